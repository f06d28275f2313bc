import { escapeForTerminal } from '../server/terminal.js';

/** A line on standard output; user agents and usernames in it cannot drive the terminal. */
export function print(text: string): void {
  process.stdout.write(`${escapeForTerminal(text)}\n`);
}

/** A `latchkey: …` line on standard error, escaped like {@link print}. */
export function fail(text: string): void {
  process.stderr.write(`latchkey: ${escapeForTerminal(text)}\n`);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Columns padded to their widest cell; the last column is never padded. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  for (const row of [header, ...rows]) {
    print(
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    );
  }
}

export function printJsonLines(values: readonly object[]): void {
  for (const value of values) print(JSON.stringify(value));
}
