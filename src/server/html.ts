import { escapeHtml } from '../http/shared.js';

/** Markup that is already safe: only {@link html} and {@link raw} make one. */
export class SafeHtml {
  constructor(readonly markup: string) {}
  toString(): string {
    return this.markup;
  }
}

type Interpolation =
  | SafeHtml
  | string
  | number
  | null
  | undefined
  | false
  | readonly Interpolation[];

/**
 * A template tag that HTML-escapes every interpolated value unless it is already {@link SafeHtml};
 * arrays are joined, and null, undefined and false render as nothing.
 */
export function html(strings: TemplateStringsArray, ...values: Interpolation[]): SafeHtml {
  let markup = strings[0] ?? '';
  values.forEach((value, index) => {
    markup += render(value) + (strings[index + 1] ?? '');
  });
  return new SafeHtml(markup);
}

/** Trusted markup, for constants written in this code base only. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

function render(value: Interpolation): string {
  if (value instanceof SafeHtml) return value.markup;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}
