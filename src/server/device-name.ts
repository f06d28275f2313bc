import Bowser from 'bowser';

/** Longer user agents are cut: the name is in the first few hundred characters, and parsing stays cheap. */
const MAX_INPUT = 512;
/** Distinct user agents remembered; a user's sessions repeat a handful of them. */
const CACHE_SIZE = 500;
const UNKNOWN = 'Unknown device';

/** Bowser's names where a shorter one is what people call the browser. */
const BROWSERS: Readonly<Record<string, string>> = {
  'Microsoft Edge': 'Edge',
  'Samsung Internet for Android': 'Samsung Internet',
};

/**
 * Bowser names an unrecognised agent after its first token (`SomeBot/1.0` is "SomeBot"): that is
 * the client's own text, so only a short plain name of it is shown.
 */
const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$/;

const cache = new Map<string, string>();

/**
 * A person's name for the device behind a user agent: "Chrome 156 on Linux", "Safari on iPhone",
 * "Chrome 156 on Android"; "Unknown device" when the agent says nothing Bowser recognises.
 */
export function deviceName(userAgent: string | null): string {
  if (userAgent === null) return UNKNOWN;
  const key = userAgent.slice(0, MAX_INPUT).trim();
  if (key === '') return UNKNOWN;
  const known = cache.get(key);
  if (known !== undefined) return known;
  const name = nameOf(key);
  // Oldest first out: a Map iterates in insertion order.
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(key, name);
  return name;
}

function nameOf(userAgent: string): string {
  let parsed: Bowser.Parser.ParsedResult;
  try {
    parsed = Bowser.parse(userAgent);
  } catch {
    // Bowser throws on what it cannot read; a name is never worth a failed page.
    return UNKNOWN;
  }
  const { browser, os, platform } = parsed;
  const ios = os.name === 'iOS';
  const place = ios ? (plain(platform.model) ?? 'iOS') : plain(os.name);
  // Every browser's agent starts `Mozilla/5.0`: named after that token, an agent is unknown.
  const browserName = browser.name === 'Mozilla' ? null : plain(browser.name);
  if (browserName === null) return place === null ? UNKNOWN : `Unknown browser on ${place}`;
  // Safari on iOS carries the iOS release as its version: it says nothing of its own.
  const major = ios && browserName === 'Safari' ? null : /^\d{1,4}/.exec(browser.version ?? '');
  const label = `${BROWSERS[browserName] ?? browserName}${major ? ` ${major[0]}` : ''}`;
  return place === null ? label : `${label} on ${place}`;
}

function plain(name: string | undefined): string | null {
  return name !== undefined && PLAIN_NAME.test(name) ? name : null;
}
