/**
 * A structural pre-scan of untrusted JSON text: how deep it nests and how many values it holds,
 * checked in one pass with constant memory before `JSON.parse` builds anything. `JSON.parse` itself
 * has no limits: 40 million nested brackets take gigabytes, a million tiny objects about 1 GB.
 */

/**
 * Bounds {@link checkJsonBounds} enforces.
 *
 * @example
 * ```ts
 * const bounds: JsonBounds = { maxDepth: 8, maxValues: 100_000, maxRootMembers: 10_000, maxNestedMembers: 1_000 };
 * ```
 */
export interface JsonBounds {
  /** Deepest nesting of objects and arrays; the root container is depth 1. */
  maxDepth: number;
  /** Most values in the whole text (every member of every object or array counts once). */
  maxValues: number;
  /** Most members of the root object or array. Default: `maxValues`. */
  maxRootMembers?: number;
  /** Most members of any object or array below the root. Default: `maxValues`. */
  maxNestedMembers?: number;
}

/**
 * The first bound a JSON text exceeds, as {@link checkJsonBounds} reports it.
 *
 * @example
 * ```ts
 * const excess: JsonExcess | undefined = checkJsonBounds(text, bounds);
 * if (excess) console.log(excess.bound, excess.limit, excess.offset);
 * ```
 */
export interface JsonExcess {
  /** Which bound: `depth`, `values`, `rootMembers` or `nestedMembers`. */
  bound: 'depth' | 'values' | 'rootMembers' | 'nestedMembers';
  /** The limit that was passed. */
  limit: number;
  /** The character offset where the scan stopped. */
  offset: number;
  /** The excess in words, e.g. "nests deeper than 8 levels". */
  description: string;
}

const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/**
 * Scans JSON text for its nesting depth and value counts, stopping at the first bound it exceeds.
 * It does not validate the JSON (parse it afterwards); it only guarantees that a text within the
 * bounds cannot make `JSON.parse` build more than `maxValues` values or recurse deeper than
 * `maxDepth`. One pass, no allocation beyond one counter per level.
 *
 * @param text - the JSON text
 * @param bounds - the limits
 * @returns the first excess, or `undefined` when the text is within every bound
 *
 * @example
 * ```ts
 * checkJsonBounds('[[[1]]]', { maxDepth: 2, maxValues: 10 })?.description; // 'nests deeper than 2 levels'
 * checkJsonBounds('{"a":[1,2]}', { maxDepth: 2, maxValues: 10 }); // undefined
 * ```
 */
export function checkJsonBounds(text: string, bounds: JsonBounds): JsonExcess | undefined {
  const { maxDepth, maxValues } = bounds;
  const maxRootMembers = bounds.maxRootMembers ?? maxValues;
  const maxNestedMembers = bounds.maxNestedMembers ?? maxValues;
  const members = new Float64Array(maxDepth + 2);
  const empty = new Uint8Array(maxDepth + 2);
  let depth = 0;
  let values = 0;
  let inString = false;
  const excess = (
    bound: JsonExcess['bound'],
    limit: number,
    offset: number,
    description: string,
  ): JsonExcess => ({ bound, limit, offset, description });
  const countMember = (offset: number): JsonExcess | undefined => {
    members[depth] = members[depth]! + 1;
    values += 1;
    if (values > maxValues) return excess('values', maxValues, offset, `holds more than ${maxValues} values`);
    if (depth === 1 && members[1]! > maxRootMembers)
      return excess(
        'rootMembers',
        maxRootMembers,
        offset,
        `has more than ${maxRootMembers} top-level entries`,
      );
    if (depth > 1 && members[depth]! > maxNestedMembers)
      return excess(
        'nestedMembers',
        maxNestedMembers,
        offset,
        `has an object or array (at depth ${depth}) with more than ${maxNestedMembers} entries`,
      );
    return undefined;
  };
  for (let offset = 0; offset < text.length; offset += 1) {
    const code = text.charCodeAt(offset);
    if (inString) {
      if (code === BACKSLASH) offset += 1;
      else if (code === QUOTE) inString = false;
      continue;
    }
    if (isWhitespace(code)) continue;
    if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
      depth = Math.max(0, depth - 1);
      continue;
    }
    if (depth > 0 && empty[depth] === 1) {
      // The first token inside a container starts its first member.
      empty[depth] = 0;
      const found = countMember(offset);
      if (found) return found;
    } else if (code === COMMA && depth > 0) {
      const found = countMember(offset);
      if (found) return found;
      continue;
    }
    if (code === QUOTE) {
      inString = true;
    } else if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
      depth += 1;
      if (depth > maxDepth) return excess('depth', maxDepth, offset, `nests deeper than ${maxDepth} levels`);
      members[depth] = 0;
      empty[depth] = 1;
    }
  }
  return undefined;
}

/** Longest text {@link quoteText} quotes whole. */
const QUOTED_LENGTH = 120;

/**
 * A value from an untrusted file, quoted for an error message: JSON-quoted and cut to 120
 * characters with its full length noted, so a 90 MB tensor name gives a short message.
 *
 * @param value - the text (other values are converted with `String`)
 * @returns the quoted, possibly shortened text
 *
 * @example
 * ```ts
 * quoteText('fc1.weight'); // '"fc1.weight"'
 * quoteText('x'.repeat(1e6)); // '"xxx…xxx"… (1000000 characters)'
 * ```
 */
export function quoteText(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  if (text.length <= QUOTED_LENGTH) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, QUOTED_LENGTH))}… (${text.length} characters)`;
}
