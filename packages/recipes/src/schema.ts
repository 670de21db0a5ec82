import { z } from 'zod';
import { dataSchema } from './schema-data';
import { MAX_STRING_LENGTH } from './schema-limits';

export { MAX_STRING_LENGTH };

/**
 * The recipe format version this package reads and writes.
 *
 * @example
 * ```ts
 * const recipe = { version: RECIPE_VERSION, ... };
 * ```
 */
export const RECIPE_VERSION = 1 as const;

/**
 * What a run name may be: one folder name made of letters, digits, `_`, `.` and `-`, but not `.` or
 * `..`, so that `out/<name>` stays inside `out/`.
 *
 * @example
 * ```ts
 * RUN_NAME.test('mnist-90'); // true
 * RUN_NAME.test('..'); // false
 * ```
 */
export const RUN_NAME = /^(?!\.{1,2}$)[A-Za-z0-9_.-]+$/;

const text = (description: string) => z.string().min(1).max(MAX_STRING_LENGTH).describe(description);
const count = (description: string, minimum = 1) =>
  z.int().min(minimum).max(1_000_000_000).describe(description);
const positive = (description: string) => z.number().positive().max(1e6).describe(description);

/**
 * A parameter selector: an exact parameter or layer name, or a regular expression tested on the parameter name.
 *
 * @example
 * ```ts
 * selectorSchema.parse({ pattern: 'dense_\\d+/kernel' });
 * ```
 */
export const selectorSchema = z
  .union([
    text('An exact parameter name (`dense_1/kernel`) or layer name (`dense_1`).'),
    z
      .strictObject({
        pattern: text('A regular expression (JavaScript syntax) tested on the parameter name.'),
        flags: z
          .string()
          .regex(/^[imsu]*$/)
          .max(4)
          .optional()
          .describe('RegExp flags among i, m, s, u.'),
      })
      .describe('A pattern selector.'),
  ])
  .describe('Selects parameters by name or pattern.');

const selectorList = (description: string) => z.array(selectorSchema).max(1000).describe(description);

/**
 * Plugin options: a JSON object passed to the plugin factory.
 *
 * @example
 * ```ts
 * pluginOptionsSchema.parse({ scope: 'global' });
 * ```
 */
export const pluginOptionsSchema = z
  .record(z.string().max(200), z.unknown())
  .describe("The plugin's options, passed to its factory as JSON.");

/**
 * A plugin reference: its id (as registered) and its options.
 *
 * @example
 * ```ts
 * pluginReferenceSchema.parse({ id: 'topV', options: { scope: 'global' } });
 * ```
 */
export const pluginReferenceSchema = z
  .strictObject({
    id: z
      .string()
      .min(1)
      .max(200)
      .describe('The id the plugin is registered under, for example `magnitude`, `topV`, `cubic`.'),
    options: pluginOptionsSchema.default({}),
  })
  .describe('A plugin by id with its options.');

/**
 * A learning-rate schedule over the run (`training.steps` long): constant, linear warm-up then
 * linear decay, or warm-up then cosine decay.
 *
 * @example
 * ```ts
 * learningRateScheduleSchema.parse({ type: 'linear', warmupSteps: 15 });
 * ```
 */
export const learningRateScheduleSchema = z
  .strictObject({
    type: z
      .enum(['constant', 'linear', 'cosine'])
      .default('constant')
      .describe(
        'constant; linear: warm-up then linear decay to 0 at the last step; cosine: warm-up then half a cosine down to minimum.',
      ),
    warmupSteps: z
      .int()
      .min(0)
      .max(1_000_000_000)
      .optional()
      .describe('Steps of linear warm-up (default 0).'),
    warmupFraction: z
      .number()
      .min(0)
      .lt(1)
      .optional()
      .describe('Warm-up as a share of training.steps (rounded), instead of warmupSteps.'),
    minimum: z.number().positive().max(1e6).optional().describe('The floor of the rate (default 1e-8).'),
  })
  .describe('How the learning rate changes over the run.');

const optimizerSchema = z
  .strictObject({
    type: z
      .enum(['adam', 'adamw', 'sgd'])
      .default('adam')
      .describe('The optimizer; adamw is Adam with decoupled weight decay (default 0.01).'),
    learningRate: positive('The (peak) learning rate.'),
    schedule: learningRateScheduleSchema
      .optional()
      .describe('The learning-rate schedule (default constant).'),
    beta1: z.number().min(0).lt(1).optional().describe('Adam β₁ (default 0.9).'),
    beta2: z.number().min(0).lt(1).optional().describe('Adam β₂ (default 0.999).'),
    epsilon: z.number().positive().max(1).optional().describe('Adam ε (default 1e-8).'),
    weightDecay: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe('Decoupled weight decay (AdamW): θ ← θ − α·decay·θ (default 0 for adam, 0.01 for adamw).'),
    momentum: z.number().min(0).lt(1).optional().describe('SGD momentum.'),
  })
  .describe('An optimizer with its learning rate and schedule.');

const modelCommon = {
  loss: z
    .enum(['sparseCategoricalCrossentropy', 'categoricalCrossentropy', 'meanSquaredError'])
    .default('sparseCategoricalCrossentropy')
    .describe('The task loss.'),
  fromLogits: z.boolean().optional().describe('Whether the model outputs logits (default: unless softmax).'),
};

/**
 * Where the model comes from: a built-in example model, a saved TF.js model, a Hugging Face BERT
 * folder, or a module that builds one.
 *
 * @example
 * ```ts
 * modelSchema.parse({ builtin: 'mlp-784-300-100-10' });
 * ```
 */
export const modelSchema = z
  .union([
    z.strictObject({
      builtin: z
        .string()
        .regex(/^mlp(-[1-9][0-9]{0,5}){2,8}$/)
        .describe('A built-in model: `mlp-784-300-100-10` (a ReLU MLP; the sizes are the layer widths).'),
      ...modelCommon,
    }),
    z.strictObject({
      path: text('A saved TF.js layers model: a directory with model.json, relative to the recipe.'),
      ...modelCommon,
    }),
    z.strictObject({
      huggingFace: text(
        'A Hugging Face BERT folder (config.json + model.safetensors, and vocab.txt for text data), relative to the recipe; a sequence-classification head of one output per label is added.',
      ),
      freezeEmbeddings: z
        .boolean()
        .default(true)
        .describe('Keep the embedding modules frozen (as Movement Pruning does).'),
      strict: z
        .boolean()
        .default(false)
        .describe(
          'Require every tensor of the head too (false: a missing or other-sized pooler or classifier starts fresh).',
        ),
    }),
    z.strictObject({
      module: text('A JavaScript module (relative to the recipe, or a package) that builds the model.'),
      export: z
        .string()
        .regex(/^[A-Za-z_$][\w$]*$/)
        .max(200)
        .default('default')
        .describe('The exported function `(seed) => tf.LayersModel` (default `default`).'),
      ...modelCommon,
    }),
  ])
  .describe('The model to prune.');

export { dataSchema };

/**
 * Training hyper-parameters.
 *
 * @example
 * ```ts
 * trainingSchema.parse({ steps: 6000, optimizer: { learningRate: 1e-3 } });
 * ```
 */
export const trainingSchema = z
  .strictObject({
    steps: count('Total optimizer steps of the run.'),
    optimizer: optimizerSchema.describe('Trains the weights.'),
    scoreOptimizer: optimizerSchema.optional().describe('Trains learned scores (movement, l0).'),
    gradientClipping: positive('Clip the global gradient norm to this value.').optional(),
    gradientAccumulation: count(
      'Micro-batches of data.batchSize per optimizer step; their gradients are averaged (default 1).',
    )
      .max(1024)
      .default(1),
    evaluateEvery: count('Evaluate on the test data every N steps (0: only at the end).', 0).default(0),
    metrics: z
      .array(z.enum(['accuracy', 'f1', 'macroF1']))
      .min(1)
      .max(3)
      .default(['accuracy'])
      .describe('What evaluations report: accuracy, f1 (binary, class 1 positive), macroF1.'),
    keepBest: z
      .strictObject({
        metric: z
          .enum(['accuracy', 'f1', 'macroF1', 'loss'])
          .default('accuracy')
          .describe('The evaluation metric that decides (loss: lowest, others: highest).'),
      })
      .optional()
      .describe(
        'Export the model of the best evaluation to <out>/best (with best.json), as evaluations happen.',
      ),
    finalMaskUpdate: z
      .boolean()
      .default(false)
      .describe(
        'After the last step, select the masks once more from the final scores (the benchmark’s final masks).',
      ),
    divergenceGuard: z
      .union([
        z.literal(false),
        z.strictObject({
          factor: z
            .number()
            .gt(1)
            .max(1e30)
            .optional()
            .describe('Stop when the loss exceeds this many times its running minimum (default 1e6).'),
          floor: z
            .number()
            .min(0)
            .max(1e30)
            .optional()
            .describe('The running minimum counts as at least this much (default 1e-3).'),
        }),
      ])
      .optional()
      .describe(
        'Stop a diverging run (the loss grown beyond factor × its running minimum), naming the step and the first non-finite parameter; false turns the growth check off. A non-finite loss always stops the run.',
      ),
  })
  .describe('Training hyper-parameters.');

/**
 * Parameter groups: which weights are prunable, which are frozen.
 *
 * @example
 * ```ts
 * parametersSchema.parse({ exclude: ['dense_3/kernel'] });
 * ```
 */
export const parametersSchema = z
  .strictObject({
    include: selectorList('Prunable weights to expose (default: every supported weight).').optional(),
    exclude: selectorList('Prunable weights to leave dense.').optional(),
    frozen: selectorList('Weights the optimizer must not change (they can still be pruned).').optional(),
  })
  .describe('Which weights are pruned and which are frozen.');

/**
 * One pruning group: the composition of score strategy, mask function and schedule.
 *
 * @example
 * ```ts
 * pruningGroupSchema.parse({ scores: { id: 'magnitude' }, mask: { id: 'topV' }, schedule: { id: 'constant', options: { sparsity: 0.5 } } });
 * ```
 */
export const pruningGroupSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .max(100)
      .optional()
      .describe('Group name, for reports and checkpoints.'),
    include: selectorList('Parameters of this group (default: all not taken by earlier groups).').optional(),
    exclude: selectorList('Parameters to leave out of this group.').optional(),
    scores: pluginReferenceSchema.describe('The score strategy (`magnitude`, `movement`, `l0`, criteria…).'),
    mask: pluginReferenceSchema.describe('The mask function (`topV`, `threshold`, `hardConcrete`…).'),
    schedule: pluginReferenceSchema.describe('The sparsity (or threshold) schedule (`cubic`, `constant`…).'),
    maskUpdateInterval: count('Re-select masks every N steps (default: the schedule’s).').optional(),
  })
  .describe('A pruning group: score strategy + mask function + schedule.');

/**
 * Where results go.
 *
 * @example
 * ```ts
 * exportSchema.parse({ directory: 'out/run', strip: true });
 * ```
 */
export const exportSchema = z
  .strictObject({
    directory: text('Output directory, relative to the recipe (default `out/<name>`).').optional(),
    strip: z.boolean().default(true).describe('Save the stripped model (masks applied, scores dropped).'),
    format: z
      .enum(['auto', 'tfjs', 'huggingface', 'sparse'])
      .default('auto')
      .describe(
        'The model format: tfjs (model.json) for layers models, huggingface (config.json + model.safetensors) for BERT, sparse (one compact model.fpsparse of @fineprune/sparse: a layers model stripped, or BERT in its Hugging Face layout with only the kept weights) for either; auto picks tfjs or huggingface by model.',
      ),
    dtype: z
      .enum(['F32', 'F16'])
      .default('F32')
      .describe('Weight precision of a huggingface export, and of the values of a sparse one.'),
    shrink: z
      .boolean()
      .default(false)
      .describe(
        'Export the physically smaller model: a TF.js layers model without its pruned neurons and filters (shrink of @fineprune/layers; format tfjs or sparse), a BERT model without its pruned heads and feed-forward neurons (shrinkBertModel; format huggingface, config.json records the per-layer sizes); run.json records the units each structure kept and the sizes before and after.',
      ),
    report: z.boolean().default(true).describe('Write report.html and run.json.'),
  })
  .describe('What the run writes at the end.');

/**
 * Checkpointing.
 *
 * @example
 * ```ts
 * checkpointSchema.parse({ every: 600 });
 * ```
 */
export const checkpointSchema = z
  .strictObject({
    every: count('Write a checkpoint every N steps (0: only on interrupt and at the end).', 0).default(0),
    directory: text('Checkpoint directory (default `<export.directory>/checkpoint`).').optional(),
  })
  .describe('Checkpoints for --resume.');

/**
 * A whole recipe, version 1.
 *
 * @example
 * ```ts
 * const result = recipeSchema.safeParse(JSON.parse(text)); // prefer validateRecipe() for messages with fixes
 * ```
 */
export const recipeSchema = z
  .strictObject({
    $schema: z.string().max(MAX_STRING_LENGTH).optional().describe('Editor hint: the JSON Schema URL.'),
    version: z.literal(RECIPE_VERSION).describe('The recipe format version.'),
    name: z
      .string()
      .regex(RUN_NAME)
      .max(100)
      .default('run')
      .describe(
        'Run name: one folder name (letters, digits, `_`, `.`, `-`; not `.` or `..`), used for out/<name> and reports.',
      ),
    description: z.string().max(MAX_STRING_LENGTH).optional().describe('Free text.'),
    seed: z.int().min(0).max(2147483647).default(0).describe('Seed of data order, init and random masks.'),
    backend: z
      .enum(['auto', 'cpu', 'wasm', 'webgpu', 'node-gpu'])
      .default('wasm')
      .describe('The TF.js backend.'),
    plugins: z
      .array(text('An npm package name that registers fineprune plugins.'))
      .max(100)
      .default([])
      .describe('Plugin packages to import (by package name) before resolving plugin ids.'),
    model: modelSchema,
    data: dataSchema,
    training: trainingSchema,
    parameters: parametersSchema.default({}),
    pruning: z.array(pruningGroupSchema).min(1).max(64).describe('The pruning groups.'),
    lossTerms: z
      .array(pluginReferenceSchema)
      .max(64)
      .default([])
      .describe('Terms added to the task loss: regularisers (σ(S), expected L0), distillation.'),
    hooks: z
      .array(pluginReferenceSchema)
      .max(64)
      .default([])
      .describe('Hook-only plugins (loggers, metrics).'),
    export: exportSchema.default({ strip: true, format: 'auto', dtype: 'F32', shrink: false, report: true }),
    checkpoint: checkpointSchema.default({ every: 0 }),
  })
  .describe('A fineprune recipe: one pruning run, as data.');

/**
 * A validated recipe with every default filled in.
 *
 * @example
 * ```ts
 * const recipe: Recipe = parseRecipe(text);
 * recipe.training.steps; // defaults filled in
 * ```
 */
export type Recipe = z.output<typeof recipeSchema>;
/**
 * A recipe as written by a user (defaults may be left out).
 *
 * @example
 * ```ts
 * const input: RecipeInput = { version: 1, model: { builtin: 'mlp-784-300-100-10' }, data: { dataset: 'mnist' }, training: { steps: 100, optimizer: { learningRate: 1e-3 } }, pruning: [group] };
 * ```
 */
export type RecipeInput = z.input<typeof recipeSchema>;
/**
 * A parameter selector of a recipe.
 *
 * @example
 * ```ts
 * const selector: RecipeSelector = { pattern: 'dense_\\d/kernel' };
 * ```
 */
export type RecipeSelector = z.output<typeof selectorSchema>;
/**
 * A plugin reference of a recipe.
 *
 * @example
 * ```ts
 * const reference: PluginReference = { id: 'cubic', options: { finalSparsity: 0.9, totalSteps: 6000 } };
 * ```
 */
export type PluginReference = z.output<typeof pluginReferenceSchema>;
/**
 * One pruning group of a recipe.
 *
 * @example
 * ```ts
 * const group: RecipePruningGroup = recipe.pruning[0]!;
 * ```
 */
export type RecipePruningGroup = z.output<typeof pruningGroupSchema>;
/**
 * The model section of a recipe.
 *
 * @example
 * ```ts
 * const model: RecipeModel = { builtin: 'mlp-784-300-100-10', loss: 'sparseCategoricalCrossentropy' };
 * ```
 */
export type RecipeModel = z.output<typeof modelSchema>;
/**
 * An optimizer section of a recipe.
 *
 * @example
 * ```ts
 * const optimizer: RecipeOptimizer = { type: 'adam', learningRate: 1e-3 };
 * ```
 */
export type RecipeOptimizer = z.output<typeof optimizerSchema>;
/**
 * The data section of a recipe.
 *
 * @example
 * ```ts
 * const data: RecipeData = recipe.data;
 * if (data.text) console.log(data.text.train);
 * ```
 */
export type RecipeData = z.output<typeof dataSchema>;
/**
 * A text data source of a recipe (`data.text`).
 *
 * @example
 * ```ts
 * const source: RecipeTextData | undefined = recipe.data.text;
 * ```
 */
export type RecipeTextData = NonNullable<RecipeData['text']>;
/**
 * An image-folder data source of a recipe (`data.images`).
 *
 * @example
 * ```ts
 * const source: RecipeImageData | undefined = recipe.data.images;
 * ```
 */
export type RecipeImageData = NonNullable<RecipeData['images']>;
/**
 * The tokenizer settings of text data (`data.tokenizer`).
 *
 * @example
 * ```ts
 * const tokenizer: RecipeTokenizer = recipe.data.tokenizer ?? { lowercase: true, maxLength: 128 };
 * ```
 */
export type RecipeTokenizer = NonNullable<RecipeData['tokenizer']>;
/**
 * A learning-rate schedule of a recipe's optimizer.
 *
 * @example
 * ```ts
 * const schedule: RecipeLearningRateSchedule = { type: 'linear', warmupSteps: 15 };
 * ```
 */
export type RecipeLearningRateSchedule = z.output<typeof learningRateScheduleSchema>;
