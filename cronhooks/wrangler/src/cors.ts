// CORS for the Worker's own endpoints, so that one admin page (ALLOWED_ORIGIN)
// can call /health and /trigger from a browser. With no ALLOWED_ORIGIN there
// are no CORS headers at all, and browsers keep other sites' pages out.
//
// No Access-Control-Allow-Credentials: the page sends the token in an
// Authorization header it sets itself, which CORS does not count as credentials
// (cookies are), so a page of the allowed origin only gets in with the token.

/** What a preflight may ask to send: the token, and a JSON body for /trigger. */
const ALLOWED_HEADERS = "Authorization, Content-Type";
/** How long a browser may reuse a preflight's answer, in seconds. */
const MAX_AGE = "600";

/**
 * The CORS headers of an answer to `request`: Access-Control-Allow-Origin only
 * for the allowed origin, and Vary: Origin on every answer once one is set,
 * since the answer then depends on who asks (a cache must not hand the allowed
 * origin's answer to another).
 */
export function corsHeaders(
  request: Request,
  allowedOrigin: string | null,
): Record<string, string> {
  if (allowedOrigin === null) return {};
  return request.headers.get("Origin") === allowedOrigin
    ? { "Access-Control-Allow-Origin": allowedOrigin, Vary: "Origin" }
    : { Vary: "Origin" };
}

/**
 * The answer to OPTIONS: 204 with Allow, plus what a preflight from the allowed
 * origin needs. Any other origin gets no Access-Control-* header, which is how
 * a browser learns it may not send the request.
 */
export function preflight(
  request: Request,
  allowedOrigin: string | null,
  methods: readonly string[],
): Response {
  const headers: Record<string, string> = {
    Allow: methods.join(", "),
    ...corsHeaders(request, allowedOrigin),
  };
  if ("Access-Control-Allow-Origin" in headers) {
    headers["Access-Control-Allow-Methods"] = methods.join(", ");
    headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS;
    headers["Access-Control-Max-Age"] = MAX_AGE;
  }
  return new Response(null, { status: 204, headers });
}
