import { describe, expect, it } from 'vitest';
import { deviceName } from '../../src/server/device-name.js';

const CHROME_LINUX =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1';
const CHROME_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/156.0.0.0 Mobile/15E148 Safari/604.1';
const SAFARI_IPAD =
  'Mozilla/5.0 (iPad; CPU OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1';
const SAFARI_MAC =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15';
const FIREFOX_WINDOWS =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0';
const EDGE_MAC =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.2849.68';
const CHROME_ANDROID =
  'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36';
const SAMSUNG =
  'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36';

describe('deviceName', () => {
  it.each([
    [CHROME_LINUX, 'Chrome 156 on Linux'],
    [SAFARI_IPHONE, 'Safari on iPhone'],
    [CHROME_IPHONE, 'Chrome 156 on iPhone'],
    [SAFARI_IPAD, 'Safari on iPad'],
    [SAFARI_MAC, 'Safari 18 on macOS'],
    [FIREFOX_WINDOWS, 'Firefox 140 on Windows'],
    [EDGE_MAC, 'Edge 130 on macOS'],
    [CHROME_ANDROID, 'Chrome 156 on Android'],
    [SAMSUNG, 'Samsung Internet 25 on Android'],
  ])('names %s', (userAgent, name) => {
    expect(deviceName(userAgent)).toBe(name);
  });

  it('gives "Unknown device" for what it cannot name', () => {
    for (const userAgent of [null, '', '   ', 'curl/8.5.0', '\u0000\u0001', 'x'.repeat(600)]) {
      expect(deviceName(userAgent)).toBe('Unknown device');
    }
  });

  it('shows an unrecognised agent its own name only when it is short and plain', () => {
    expect(deviceName('SomeBot/1.0 (+https://example.com)')).toBe('SomeBot 1');
    expect(deviceName(`${'A'.repeat(60)}/1.0 (x)`)).toBe('Unknown device');
    expect(deviceName('Foo"<b>/1.0 (x)')).toBe('Unknown device');
    expect(deviceName('Mozilla/5.0 (compatible)')).toBe('Unknown device');
    expect(deviceName('Mozilla/5.0 (Windows NT 10.0)')).toBe('Unknown browser on Windows');
  });

  it('reads only the start of a huge agent, quickly and without throwing', () => {
    const huge = `${CHROME_LINUX} ${'x'.repeat(100_000)}`;
    const started = performance.now();
    expect(deviceName(huge)).toBe('Chrome 156 on Linux');
    expect(deviceName('('.repeat(100_000))).toBe('Unknown device');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('keeps naming correctly once its cache has turned over', () => {
    for (let i = 0; i < 1200; i++) {
      expect(deviceName(`${FIREFOX_WINDOWS} build/${i}`)).toBe('Firefox 140 on Windows');
    }
    expect(deviceName(CHROME_ANDROID)).toBe('Chrome 156 on Android');
    expect(deviceName(CHROME_ANDROID)).toBe('Chrome 156 on Android');
  });
});
