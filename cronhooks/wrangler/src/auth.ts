// Who may use POST /trigger: a caller holding the same bearer token the Worker
// sends to the backend. Anyone who can reach the Worker's URL could otherwise
// run jobs at will.

/** The token of an `Authorization: Bearer <token>` header, else null. */
export function bearerToken(request: Request): string | null {
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(
    request.headers.get("Authorization") ?? "",
  );
  return match?.[1] ?? null;
}

/**
 * Compares in time that depends on neither token's content nor length: both
 * are hashed to 32 bytes first, then every byte is compared with no early exit.
 */
export async function tokensMatch(
  given: string,
  expected: string,
): Promise<boolean> {
  const encoder = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  const left = new Uint8Array(a);
  const right = new Uint8Array(b);
  let difference = 0;
  for (let i = 0; i < left.length; i++) {
    difference |= (left[i] ?? 0) ^ (right[i] ?? 0);
  }
  return difference === 0;
}

export async function isAuthorized(
  request: Request,
  expectedToken: string,
): Promise<boolean> {
  const given = bearerToken(request);
  // An empty expected token must never match: it would open /trigger to anyone.
  if (given === null || expectedToken === "") return false;
  return tokensMatch(given, expectedToken);
}
