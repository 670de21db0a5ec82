/**
 * A strict little XML reader for the report's inline SVG, for tests: elements with their attributes
 * and text, entities decoded; unbalanced or malformed markup throws.
 */

/** One element of the parsed SVG. */
export interface SvgElement {
  name: string;
  attributes: Record<string, string>;
  children: SvgElement[];
  /** The element's own text, entities decoded. */
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };

function decode(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_, name: string) => ENTITIES[name]!);
}

const TOKEN = /<\/([A-Za-z][\w-]*)\s*>|<([A-Za-z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
const ATTRIBUTE = /([\w:-]+)="([^"]*)"/g;

/**
 * Parses one SVG element (the text must start with `<svg` and end with its closing tag).
 *
 * @throws Error for a stray `<`, `&` outside an entity, an attribute without quotes, or unbalanced tags
 */
export function parseSvg(markup: string): SvgElement {
  const root: SvgElement = { name: '#root', attributes: {}, children: [], text: '' };
  const open: SvgElement[] = [root];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < markup.length) {
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(markup);
    if (match === null) throw new Error(`malformed markup at ${at}: ${markup.slice(at, at + 60)}`);
    const [, closing, name, attributes, selfClosing, text] = match;
    const current = open.at(-1)!;
    if (text !== undefined) {
      if (/&(?!(amp|lt|gt|quot|#39);)/.test(text)) throw new Error(`a bare & in text at ${at}`);
      current.text += decode(text);
    } else if (closing !== undefined) {
      if (current.name !== closing) throw new Error(`</${closing}> closes <${current.name}> at ${at}`);
      open.pop();
    } else {
      const element: SvgElement = { name: name!, attributes: {}, children: [], text: '' };
      for (const [, key, value] of attributes!.matchAll(ATTRIBUTE)) {
        if (/&(?!(amp|lt|gt|quot|#39);)/.test(value!)) throw new Error(`a bare & in ${key} at ${at}`);
        element.attributes[key!] = decode(value!);
      }
      current.children.push(element);
      if (!selfClosing) open.push(element);
    }
  }
  if (open.length !== 1) throw new Error(`<${open.at(-1)!.name}> is never closed`);
  if (root.children.length !== 1 || root.children[0]!.name !== 'svg')
    throw new Error('not one <svg> element');
  return root.children[0]!;
}

/** Every element below `element` (depth first) that satisfies `test`. */
export function findAll(element: SvgElement, test: (candidate: SvgElement) => boolean): SvgElement[] {
  return element.children.flatMap((child) => [...(test(child) ? [child] : []), ...findAll(child, test)]);
}

/** The `<svg data-plot="…">…</svg>` of one plot in an HTML page (undefined when absent). */
export function plotMarkup(page: string, plot: string): string | undefined {
  const start = page.indexOf(`<svg data-plot="${plot}"`);
  if (start < 0) return undefined;
  const end = page.indexOf('</svg>', start);
  return page.slice(start, end + '</svg>'.length);
}
