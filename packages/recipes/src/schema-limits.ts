/**
 * Longest string accepted anywhere in a recipe (names, paths, patterns, option values).
 *
 * @example
 * ```ts
 * if (name.length > MAX_STRING_LENGTH) throw new Error('too long for a recipe');
 * ```
 */
export const MAX_STRING_LENGTH = 4096;
