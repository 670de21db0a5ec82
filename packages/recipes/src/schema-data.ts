import { z } from 'zod';
import { MAX_STRING_LENGTH } from './schema-limits';

const text = (description: string) => z.string().min(1).max(MAX_STRING_LENGTH).describe(description);
const count = (description: string, minimum = 1) =>
  z.int().min(minimum).max(1_000_000_000).describe(description);
const column = (description: string) => z.string().min(1).max(200).describe(description);

/**
 * The built-in datasets: MNIST and Fashion-MNIST (images, 784 values per example), and the offline
 * text tasks Brown genres (15 labels) and SpamAssassin (ham / spam).
 *
 * @example
 * ```ts
 * BUILTIN_DATASETS.includes('spam-assassin'); // true
 * ```
 */
export const BUILTIN_DATASETS = ['mnist', 'fashion-mnist', 'brown-genre', 'spam-assassin'] as const;

/**
 * How text is turned into token ids: the WordPiece vocabulary (default: `vocab.txt` beside a
 * `model.huggingFace` checkpoint, else bert-base-uncased), lower-casing, and the sequence length.
 *
 * @example
 * ```ts
 * tokenizerSchema.parse({ maxLength: 128, vocabulary: './bert/vocab.txt' });
 * ```
 */
export const tokenizerSchema = z
  .strictObject({
    vocabulary: text(
      'A WordPiece vocab.txt (one token per line), relative to the recipe. Default: vocab.txt in the model.huggingFace folder, else bert-base-uncased.',
    ).optional(),
    lowercase: z.boolean().default(true).describe('Lower-case and strip accents first (uncased BERT).'),
    maxLength: count('Tokens per example, [CLS] and [SEP] included; longer texts are truncated.', 3)
      .max(4096)
      .default(128),
  })
  .describe('Tokenization of text data.');

const splitOptions = {
  validation: text(
    'The validation (evaluation) data, of the same kind as train. Without it, validationFraction of train is held out.',
  ).optional(),
  validationFraction: z
    .number()
    .gt(0)
    .lt(1)
    .optional()
    .describe('Share of the training examples held out (seeded) when no validation is given; default 0.1.'),
  labels: z
    .array(z.string().min(1).max(200))
    .min(2)
    .max(1000)
    .optional()
    .describe(
      'The label set, in the order of the model outputs. Default: inferred (sorted); an unknown label is an error when declared.',
    ),
};

/**
 * Text classification from a CSV or JSONL file: one example per row, a text column (and optionally a
 * second text, for sentence pairs) and a label column.
 *
 * @example
 * ```ts
 * textDataSchema.parse({ train: 'data/train.jsonl', validation: 'data/dev.jsonl', labels: ['ham', 'spam'] });
 * ```
 */
export const textDataSchema = z
  .strictObject({
    train: text('The training examples: a .csv (header row first) or .jsonl file, relative to the recipe.'),
    ...splitOptions,
    format: z.enum(['csv', 'jsonl']).optional().describe('The file format; default: from the extension.'),
    delimiter: z.enum([',', ';', '\t', '|']).default(',').describe('The CSV field separator.'),
    textColumn: column('The column (CSV header or JSON key) holding the text.').default('text'),
    pairColumn: column('A column holding the second text of a sentence pair.').optional(),
    labelColumn: column('The column holding the label (a string, or a number in JSONL).').default('label'),
    maxRowBytes: z
      .int()
      .min(64)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024)
      .describe(
        'The longest row accepted, in bytes (1 MiB by default); a longer row is an error naming its line.',
      ),
  })
  .describe('Text classification from a CSV or JSONL file.');

/**
 * Image classification from folders: one subfolder per class, PNG or JPEG files in each.
 *
 * @example
 * ```ts
 * imageDataSchema.parse({ train: 'data/fashion/train', validation: 'data/fashion/test', width: 28, height: 28 });
 * ```
 */
export const imageDataSchema = z
  .strictObject({
    train: text('A folder with one subfolder of PNG or JPEG images per class, relative to the recipe.'),
    ...splitOptions,
    width: count('Image width in pixels.').max(4096),
    height: count('Image height in pixels.').max(4096),
    channels: z
      .union([z.literal(1), z.literal(3)])
      .default(1)
      .describe('1: grey (luminance), 3: RGB.'),
    resize: z
      .enum(['none', 'bilinear'])
      .default('none')
      .describe('none: an image of another size is an error; bilinear: resample it to width × height.'),
    mean: z
      .array(z.number().min(-1e6).max(1e6))
      .min(1)
      .max(3)
      .optional()
      .describe('Per-channel mean subtracted from pixel values in [0, 1] (default 0).'),
    std: z
      .array(z.number().positive().max(1e6))
      .min(1)
      .max(3)
      .optional()
      .describe('Per-channel divisor after the mean (default 1).'),
    maxImageBytes: z
      .int()
      .min(64)
      .max(256 * 1024 * 1024)
      .default(16 * 1024 * 1024)
      .describe('The largest image file accepted, in bytes.'),
  })
  .describe('Image classification from a folder of class subfolders.');

/**
 * The data: one source (a built-in `dataset`, a `text` file, an `images` folder or a JavaScript
 * `module`), the batch size and optional subsets.
 *
 * @example
 * ```ts
 * dataSchema.parse({ dataset: 'mnist', batchSize: 100 });
 * dataSchema.parse({ text: { train: 'train.jsonl' }, tokenizer: { maxLength: 64 }, batchSize: 16 });
 * ```
 */
export const dataSchema = z
  .strictObject({
    dataset: z.enum(BUILTIN_DATASETS).optional().describe('A built-in dataset id.'),
    text: textDataSchema.optional(),
    images: imageDataSchema.optional(),
    module: text(
      'A JavaScript module (relative to the recipe, or a package) exporting a function that returns the data.',
    ).optional(),
    export: z
      .string()
      .regex(/^[A-Za-z_$][\w$]*$/)
      .max(200)
      .optional()
      .describe('With module: the exported function `(context) => data` (default `default`).'),
    tokenizer: tokenizerSchema
      .optional()
      .describe('Tokenization of text data (text and the built-in text tasks).'),
    batchSize: count('Examples per training batch (per micro-batch with gradient accumulation).')
      .max(65536)
      .default(100),
    evaluationBatchSize: count('Examples per evaluation batch (default: 1000 for features, 64 for text).')
      .max(65536)
      .optional(),
    trainLimit: count('Use only the first N training examples.').optional(),
    testLimit: count('Evaluate on only the first N test examples.').optional(),
  })
  .superRefine((data, context) => {
    const sources = (['dataset', 'text', 'images', 'module'] as const).filter(
      (key) => data[key] !== undefined,
    );
    if (sources.length !== 1) {
      context.addIssue({
        code: 'custom',
        path: [],
        message:
          sources.length === 0
            ? 'names no data source'
            : `names ${sources.length} data sources (${sources.join(', ')})`,
        params: { fix: 'Give exactly one of `dataset`, `text`, `images` or `module`.' },
      });
    }
    if (data.export !== undefined && data.module === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['export'],
        message: 'names an export but there is no data.module',
        params: { fix: 'Remove `data.export`, or give `data.module`.' },
      });
    }
    if (data.tokenizer && (data.images || data.dataset === 'mnist' || data.dataset === 'fashion-mnist')) {
      context.addIssue({
        code: 'custom',
        path: ['tokenizer'],
        message: 'applies to text data only',
        params: { fix: 'Remove `data.tokenizer`, or use text data.' },
      });
    }
  })
  .describe('The training and evaluation data.');
