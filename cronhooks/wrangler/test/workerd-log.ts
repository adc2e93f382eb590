// workerd runs verbose under the pool (which offers no way to turn that off)
// and prints a native stack for each subrequest that fails. The tests fail
// subrequests on purpose (refused connections, dropped sockets), so those
// lines would bury a real failure's output: this drops exactly them, and the
// pool's own "peer disconnected" at the end of each file. Anything else that
// workerd prints still gets through. Runs in Node, as a globalSetup.

/** workerd's message for a failed subrequest, one write each, stack included. */
const EXPECTED = [
  /^exception = .*: disconnected: connect\(\): Connection refused\n/,
  /^exception = .*: disconnected: stream disconnected prematurely\n/,
  /^uncaught exception; .*Network connection lost\.\n/,
  /^exception = .*: disconnected: WebSocket peer disconnected\n/,
];

/**
 * Installs the filter for the rest of the process, with no teardown to undo
 * it: Vitest runs the global teardowns before the pool shuts workerd down, and
 * workerd's last line ("WebSocket peer disconnected") comes after them.
 */
export default function setup() {
  const original = process.stdout.write;
  const write = original.bind(process.stdout) as (
    ...args: unknown[]
  ) => boolean;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    EXPECTED.some((pattern) => pattern.test(String(chunk))) ||
    write(chunk, ...rest)) as typeof original;
}
