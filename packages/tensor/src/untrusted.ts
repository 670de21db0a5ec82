/**
 * Reading files a user hands over as untrusted input, with no side effect on import (the
 * `@fineprune/tensor/untrusted` subpath): bounded JSON structure before `JSON.parse`, names quoted
 * and cut for messages, regular files read up to a size limit (Node only), and SHA-256 content
 * hashes (Web Crypto, in browsers and Node).
 */

export { sha256Hex } from './digest';
export { checkJsonBounds, type JsonBounds, type JsonExcess, quoteText } from './json-bounds';
export { type ReadRegularFileOptions, readRegularFile } from './regular-file';
