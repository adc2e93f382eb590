// A scriptable stand-in for the Django backend: a real HTTP server on
// 127.0.0.1, started once by Vitest (globalSetup, in Node) and called by the
// Worker under test over workerd's real network stack, so timeouts, refused
// connections and dropped sockets are the genuine article.
//
// Each test picks its own namespace and points BACKEND_BASE at
// http://127.0.0.1:<port>/<namespace>, so test files running in parallel never
// see each other's requests. Control endpoints, used by the tests:
//   PUT /__plan/<namespace>      {"<path>": [Reply, ...]}: the answers for a path
//                                (with its query string), one per request in
//                                order, the last one repeated
//   GET /__requests/<namespace>  the requests received so far, oldest first
// Unplanned paths answer like a healthy backend. A background run is a plan
// too: a 202 for "/cron/<job>", then "/cron/runs/<run_id>" answering its
// statuses in turn ("queued", "running", "succeeded").
//
// A second server, on its own port, stands for a foreign origin: somewhere a
// backend's answer might point the Worker, which must never get the token.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";
import type { Reply, ReceivedRequest } from "./fake-backend-types";

interface Namespace {
  plans: Map<string, Reply[]>;
  requests: ReceivedRequest[];
}

const namespaces = new Map<string, Namespace>();

function namespace(name: string): Namespace {
  let found = namespaces.get(name);
  if (found === undefined) {
    found = { plans: new Map(), requests: [] };
    namespaces.set(name, found);
  }
  return found;
}

function nextReply(space: Namespace, path: string): Reply {
  const plan = space.plans.get(path);
  if (plan === undefined || plan.length === 0) {
    return path === "/health"
      ? { status: 200, body: { status: "healthy" } }
      : { status: 200, body: { status: "succeeded" } };
  }
  return plan.length > 1 ? (plan.shift() as Reply) : (plan[0] as Reply);
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function headersOf(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) {
      headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
  }
  return headers;
}

export function startFakeBackend(): Promise<Server> {
  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    const [, first = "", ...rest] = url.pathname.split("/");

    if (first === "__plan" && request.method === "PUT") {
      const space = namespace(rest.join("/"));
      for (const [path, replies] of Object.entries(
        JSON.parse(body) as Record<string, Reply[]>,
      )) {
        space.plans.set(path, [...replies]);
      }
      response.writeHead(204).end();
      return;
    }
    if (first === "__requests" && request.method === "GET") {
      response
        .writeHead(200, { "Content-Type": "application/json" })
        .end(JSON.stringify(namespace(rest.join("/")).requests));
      return;
    }

    const space = namespace(first);
    const path = `/${rest.join("/")}${url.search}`;
    space.requests.push({
      method: request.method ?? "",
      path,
      headers: headersOf(request),
      body,
      received_at: Date.now(),
    });
    const reply = nextReply(space, path);
    if (reply.hang) return; // Never answer; the client's abort closes the socket.
    if (reply.reset) {
      request.socket.destroy(); // The connection drops with no answer at all.
      return;
    }
    if (reply.delay_ms !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, reply.delay_ms));
    }
    response
      .writeHead(reply.status ?? 200, {
        "Content-Type": "application/json",
        ...reply.headers,
      })
      .end(JSON.stringify(reply.body ?? {}));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

/** A loopback port nothing listens on: connecting to it is refused. */
async function closedPort(): Promise<number> {
  const server = await startFakeBackend();
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export default async function setup({ provide }: TestProject) {
  const servers = [await startFakeBackend(), await startFakeBackend()];
  const [backend, foreign] = servers.map(
    (server) => (server.address() as AddressInfo).port,
  );
  provide("backendPort", backend as number);
  provide("foreignPort", foreign as number);
  provide("closedPort", await closedPort());
  return async () => {
    for (const server of servers) {
      server.closeAllConnections(); // Hanging requests would keep close() waiting.
      await new Promise((resolve) => server.close(resolve));
    }
  };
}
