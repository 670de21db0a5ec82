/**
 * Minimal e-mail body extraction for the SpamAssassin corpus: headers dropped, MIME parts walked,
 * quoted-printable and base64 text parts decoded, HTML reduced to its text. Not a full RFC 5322 /
 * RFC 2045 parser: it aims at readable text for a classifier, not at a faithful mail reader.
 */

/** Header fields of one message or MIME part, names lowercased, folded lines joined. */
type Headers = Map<string, string>;

const NAMED_ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  copy: '©',
  reg: '®',
  trade: '™',
  mdash: '—',
  ndash: '–',
  hellip: '…',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  bull: '•',
  middot: '·',
  euro: '€',
  pound: '£',
  cent: '¢',
  yen: '¥',
  deg: '°',
  times: '×',
};

/**
 * Splits a message (or MIME part) at the first blank line into parsed headers and the body. Header
 * lines that start with whitespace continue the previous field (RFC 5322 Sec. 2.2.3, folding).
 * Without a blank line the whole text is headers and the body is empty.
 */
function splitMessage(raw: string): { headers: Headers; body: string } {
  const text = raw.replace(/\r\n?/g, '\n');
  const blank = text.search(/\n[ \t]*\n/);
  const head = blank < 0 ? text : text.slice(0, blank);
  const body = blank < 0 ? '' : text.slice(text.indexOf('\n', blank + 1) + 1);
  const headers: Headers = new Map();
  let last: string | null = null;
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && last !== null) {
      headers.set(last, `${headers.get(last)} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(last)) headers.set(last, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** The media type and parameters of a Content-Type value (RFC 2045 Sec. 5.1). */
function contentType(headers: Headers): { type: string; boundary: string | null; charset: string } {
  const value = headers.get('content-type') ?? 'text/plain';
  const type = (value.split(';')[0] ?? '').trim().toLowerCase() || 'text/plain';
  const parameter = (name: string) => {
    const match = new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(value);
    return match ? (match[1] ?? match[2] ?? null) : null;
  };
  return {
    type,
    boundary: parameter('boundary'),
    charset: (parameter('charset') ?? 'us-ascii').toLowerCase(),
  };
}

/** Bytes held one per character (code points 0–255) decoded with a charset, Latin-1 as a fallback. */
function decodeBytes(binary: string, charset: string): string {
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) {
    const code = binary.charCodeAt(i);
    if (code > 0xff) return binary; // already text, not bytes
    bytes[i] = code;
  }
  const label = charset === 'us-ascii' || charset === 'ascii' ? 'utf-8' : charset;
  try {
    return new TextDecoder(label, { fatal: true }).decode(bytes);
  } catch {
    return binary; // unknown charset or invalid bytes: keep the Latin-1 reading
  }
}

/**
 * Decodes quoted-printable text (RFC 2045 Sec. 6.7): `=` at a line end is a soft break, `=XX` a
 * byte in hexadecimal; the bytes are then read in `charset`.
 *
 * @example
 * ```ts
 * decodeQuotedPrintable('caf=C3=A9 au=\nlait', 'utf-8'); // 'café aulait'
 * ```
 */
export function decodeQuotedPrintable(text: string, charset = 'us-ascii'): string {
  const binary = text
    .replace(/=[ \t]*\r?\n/g, '')
    .replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  return decodeBytes(binary, charset);
}

/** Decodes base64 (RFC 2045 Sec. 6.8), ignoring characters outside its alphabet; bytes read in `charset`. */
function decodeBase64(text: string, charset: string): string {
  const clean = text.replace(/[^A-Za-z0-9+/]/g, '');
  const padded = clean.slice(0, clean.length - (clean.length % 4 === 1 ? 1 : 0));
  try {
    return decodeBytes(atob(padded + '='.repeat((4 - (padded.length % 4)) % 4)), charset);
  } catch {
    return '';
  }
}

/**
 * The text of an HTML document: `<script>`, `<style>` and comments removed, block ends turned into
 * line breaks, the remaining tags dropped, character references decoded.
 *
 * @example
 * ```ts
 * htmlToText('<p>Buy <b>now</b> &amp; save</p><style>p{}</style>'); // 'Buy now & save'
 * ```
 */
export function htmlToText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<(br|\/p|\/div|\/tr|\/li|\/h[1-6]|\/table|p|div|li|tr)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);?/gi, (whole, name: string) => {
      if (name[0] === '#') {
        const code =
          name[1] === 'x' || name[1] === 'X' ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
        return Number.isInteger(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : ' ';
      }
      return NAMED_ENTITIES[name.toLowerCase()] ?? whole;
    })
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/ *\n[\s]*/g, '\n')
    .trim();
}

/** The readable text of one message or MIME part (depth-limited against malformed nesting). */
function partText(raw: string, depth: number): string {
  const { headers, body } = splitMessage(raw);
  const { type, boundary, charset } = contentType(headers);
  if (type.startsWith('multipart/') && boundary !== null && depth < 8) {
    const parts = splitMultipart(body, boundary).map((part) => ({
      type: contentType(splitMessage(part).headers).type,
      text: partText(part, depth + 1),
    }));
    const nonEmpty = parts.filter((part) => part.text.length > 0);
    if (type === 'multipart/alternative') {
      // Alternatives carry the same content: keep one, preferring plain text (RFC 2046 Sec. 5.1.4).
      const plain = nonEmpty.find((part) => part.type === 'text/plain');
      return (plain ?? nonEmpty[nonEmpty.length - 1])?.text ?? '';
    }
    return nonEmpty.map((part) => part.text).join('\n\n');
  }
  if (!(type.startsWith('text/') || type.startsWith('multipart/') || type === 'message/rfc822')) return '';
  if (type === 'message/rfc822' && depth < 8) return partText(body, depth + 1);
  const encoding = (headers.get('content-transfer-encoding') ?? '').trim().toLowerCase();
  let text = body;
  if (encoding === 'quoted-printable') text = decodeQuotedPrintable(body, charset);
  else if (encoding === 'base64') text = decodeBase64(body, charset);
  if (type === 'text/html' || /<(!doctype\s+)?(html|body)\b/i.test(text)) {
    text = htmlToText(text);
  }
  return text.trim();
}

/** The parts between `--boundary` delimiter lines, up to `--boundary--` (RFC 2046 Sec. 5.1.1). */
function splitMultipart(body: string, boundary: string): string[] {
  const parts: string[] = [];
  let current: string[] | null = null;
  for (const line of body.split('\n')) {
    const trimmed = line.trimEnd();
    if (trimmed === `--${boundary}--`) break;
    if (trimmed === `--${boundary}`) {
      if (current !== null) parts.push(current.join('\n'));
      current = [];
      continue;
    }
    current?.push(line);
  }
  if (current !== null) parts.push(current.join('\n'));
  return parts;
}

/**
 * The readable body of a raw e-mail: the headers (everything before the first blank line) are
 * dropped; MIME multiparts are walked (attachments that are not text skipped, one alternative kept,
 * preferably `text/plain`); quoted-printable and base64 parts are decoded; HTML parts, and plain
 * parts that contain an `<html>` or `<body>` tag (common in spam), are reduced to text
 * ({@link htmlToText}); line ends are normalised to `\n`.
 *
 * @param raw - The whole message, headers included.
 * @returns The body text, trimmed (possibly empty).
 *
 * @example
 * ```ts
 * mailBody('Subject: hi\nContent-Type: text/html\n\n<p>Cheap <b>pills</b></p>'); // 'Cheap pills'
 * ```
 */
export function mailBody(raw: string): string {
  return partText(String(raw ?? ''), 0);
}
