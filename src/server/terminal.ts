/**
 * C0 controls but tab and newline (output is lines), DEL, C1 controls (CSI U+009B, …), line
 * separators and bidi controls: characters a terminal acts on or hides rather than shows, so a
 * user agent or a username could rewrite the screen (ANSI escapes) or disguise what is near it.
 */
const NOT_PRINTABLE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` safe to write to a terminal: each non-printable character becomes `\uXXXX`, which is
 * also a valid escape inside a JSON string, so JSON lines stay JSON with the same meaning.
 */
export function escapeForTerminal(text: string): string {
  return text.replace(
    NOT_PRINTABLE,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
