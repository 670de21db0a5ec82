import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import {
  DEFAULT_PLUGIN_IMPORT_TIMEOUT_MS,
  loadPluginPackage,
  parseRecipe,
  type PluginRegistry,
  type Recipe,
  recipeJsonSchema,
  shortenRecipe,
} from '@fineprune/recipes';
import { parseWasmThreads, setBackend, type WasmThreads } from '@fineprune/tensor';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { builtinRegistry } from './builtins';
import { type ExitCode, ExitCodes, exitCodeFor } from './exit-codes';
import { EXPORT_VALUES, type ExportFormat, type ExportValues } from './export-formats';
import { exportCheckpoint } from './export-model';
import { compactExportPath, compactReportText, readCompactReport } from './report/compact-report';
import { shrinkLines } from './report/shrink-report';
import { sizeLine } from './report/sizes';
import { writeFileAtomic } from './files';
import { createProgress, type ProgressOutput } from './progress';
import { renderHtmlReport } from './report/html';
import { readSavedModel, type SavedModelSummary } from './report/read-model';
import { isSweepTarget, readSweep, renderSweepReport, sweepLines } from './report/sweep';
import { prepareRun } from './run-check';
import { checkRecipeData } from './run-check-data';
import { encoderRemainingTable } from './report/encoder-table';
import { keptHistograms, layerTable } from './report/text';
import { runRecipe } from './run-recipe';
import { hasBertRunCheckpoint } from './run-model-bert';
import type { RunEvent } from './run-types';
import type { RunRecord } from './run-record';
import { cliVersion } from './version';

/**
 * Where the command writes: stdout for results (and `--json`), stderr for progress and errors.
 *
 * @example
 * ```ts
 * const io: CliIo = { stdout: process.stdout, stderr: process.stderr };
 * ```
 */
export interface CliIo {
  stdout: ProgressOutput;
  stderr: ProgressOutput;
  /** Installs a handler for Ctrl-C / SIGTERM; returns a function that removes it. */
  onInterrupt?(handler: () => void): () => void;
}

/**
 * Reads and validates a recipe file (JSON or YAML, by extension).
 *
 * @throws FinepruneError `IO_FAILED` when the file cannot be read, `INVALID_RECIPE` when it is invalid
 *
 * @example
 * ```ts
 * const { recipe, baseDirectory } = await readRecipeFile('examples/recipes/gradual-magnitude.yaml');
 * ```
 */
export async function readRecipeFile(
  file: string,
): Promise<{ recipe: Recipe; baseDirectory: string; source: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `The recipe ${file} cannot be read: ${(error as Error).message}`,
      fix: 'Check the path (recipes are .yaml, .yml or .json files).',
      cause: error,
    });
  }
  const source = path.basename(file);
  return { recipe: parseRecipe(text, { source }), baseDirectory: path.dirname(path.resolve(file)), source };
}

/** The encoder's remaining weights per layer and projection (Fig. 6), with a blank line after; '' for other models. */
function encoderSection(layers: Parameters<typeof encoderRemainingTable>[0]): string {
  const table = encoderRemainingTable(layers);
  return table ? `${table}\n\n` : '';
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!(Number.isInteger(parsed) && parsed >= 1)) throw new InvalidArgumentError('expected an integer ≥ 1.');
  return parsed;
}

/** `--threads`: a whole number of wasm threads (1 to 8) or `auto`. */
function wasmThreadsArgument(value: string): WasmThreads {
  try {
    return parseWasmThreads(value, '--threads');
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function positiveSeconds(value: string): number {
  const parsed = Number(value);
  if (!(Number.isFinite(parsed) && parsed > 0 && parsed <= 86_400))
    throw new InvalidArgumentError('expected a number of seconds > 0 (at most 86400).');
  return parsed;
}

/** The `--plugin-timeout` option of the commands that import plugin packages. */
function pluginTimeoutOption(): Option {
  return new Option(
    '--plugin-timeout <seconds>',
    'give up on a plugin package whose import has not finished after this many seconds (exit 6)',
  )
    .argParser(positiveSeconds)
    .default(DEFAULT_PLUGIN_IMPORT_TIMEOUT_MS / 1000);
}

/** Options of loadPluginPackage from a command's parsed options. */
function importOptions(options: Record<string, unknown>, from: string): { from: string; timeoutMs: number } {
  return { from, timeoutMs: (options.pluginTimeout as number) * 1000 };
}

function reportError(io: CliIo, error: unknown, json: boolean): ExitCode {
  if (FinepruneError.is(error)) {
    const exitCode = exitCodeFor(error.code);
    const message = error.message.replace(/^\[[A-Z_]+\] /, '').replace(/ Fix: [\s\S]*$/, '');
    io.stderr.write(`error [${error.code}]: ${message}\nfix: ${error.fix}\n`);
    if (json) {
      io.stdout.write(
        `${JSON.stringify({ type: 'error', code: error.code, message, fix: error.fix, exitCode, details: error.details ?? {} })}\n`,
      );
    }
    return exitCode;
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr.write(`internal error: ${message}\n`);
  if (json)
    io.stdout.write(
      `${JSON.stringify({ type: 'error', code: 'INTERNAL', message: String(error), exitCode: 1 })}\n`,
    );
  return ExitCodes.INTERNAL;
}

/** The model directory of a path: a run output directory (its checkpoint) or a model/checkpoint directory. */
function modelDirectory(target: string): { directory: string } {
  const resolved = path.resolve(target.replace(/model\.json$/, ''));
  const checkpoint = path.join(resolved, 'checkpoint');
  if (
    !existsSync(path.join(resolved, 'model.json')) &&
    (existsSync(path.join(checkpoint, 'model.json')) || hasBertRunCheckpoint(checkpoint))
  ) {
    return { directory: path.join(resolved, 'checkpoint') };
  }
  return { directory: resolved };
}

async function readRunRecord(file: string): Promise<RunRecord> {
  const resolved = existsSync(path.join(file, 'run.json')) ? path.join(file, 'run.json') : file;
  try {
    const record = JSON.parse(await readFile(resolved, 'utf8')) as RunRecord;
    if (record?.formatVersion !== 1 || !Array.isArray(record.layers))
      throw new Error('not a fineprune run.json');
    return record;
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `${resolved} is not a readable run record: ${(error as Error).message}`,
      fix: 'Pass the run.json (or the output directory) written by `fineprune run`.',
      cause: error,
    });
  }
}

/** `fineprune report <sweep.json> [--compare more.json…] [--html file] [--json]`: the sweep's lines. */
async function reportSweep(
  files: readonly string[],
  options: { html?: string; json?: boolean },
  io: CliIo,
): Promise<void> {
  const sweep = await readSweep(files.map((file) => path.resolve(file)));
  if (options.html) await writeFileAtomic(path.resolve(options.html), renderSweepReport(sweep));
  const lines = Object.fromEntries(sweepLines(sweep));
  if (options.json) {
    io.stdout.write(
      `${JSON.stringify({ kind: 'sweep', lines, ...(options.html ? { html: path.resolve(options.html) } : {}) })}\n`,
    );
    return;
  }
  for (const [series, points] of Object.entries(lines)) {
    const cells = points.map(
      (point) =>
        `${(point.remaining * 100).toFixed(2)}% → ${(point.accuracy * 100).toFixed(2)}% (${point.seeds})`,
    );
    io.stdout.write(`${series}: ${cells.join(', ')}\n`);
  }
  if (options.html) io.stdout.write(`\nHTML report: ${path.resolve(options.html)}\n`);
}

/**
 * Runs the `fineprune` command with `argv` (without `node` and the script) and returns its exit
 * code (see {@link ExitCodes}). Used by the `fineprune` binary and by tests.
 *
 * @example
 * ```ts
 * const code = await main(['report', 'out/run/checkpoint', '--json'], { stdout: process.stdout, stderr: process.stderr });
 * ```
 */
export async function main(
  argv: readonly string[],
  io: CliIo,
  registry: PluginRegistry = builtinRegistry(),
): Promise<ExitCode> {
  let exitCode: ExitCode = ExitCodes.OK;
  const program = new Command('fineprune')
    .description('Composable neural-network pruning for TensorFlow.js: run recipes, report, export.')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showHelpAfterError()
    .version(cliVersion(), '-V, --version', 'print the version of fineprune');

  program
    .command('run')
    .description(
      'Run a recipe (JSON or YAML) with live progress; Ctrl-C writes a checkpoint and exits with 130.',
    )
    .argument('<recipe>', 'the recipe file')
    .option('--resume', 'continue from the recipe’s checkpoint when it exists')
    .option(
      '--checkpoint <directory>',
      'checkpoint directory (default: recipe checkpoint.directory or <out>/checkpoint)',
    )
    .option(
      '--out <directory>',
      'output directory (default: recipe export.directory or out/<name> beside the recipe)',
    )
    .option(
      '--max-steps <steps>',
      'shorten the run to this many steps, scaling the schedules',
      positiveInteger,
    )
    .option('--train-limit <examples>', 'use only the first N training examples', positiveInteger)
    .option('--test-limit <examples>', 'evaluate on only the first N test examples', positiveInteger)
    .option('--json', 'print events as JSON lines on stdout (for scripts)')
    .option('--quiet', 'no progress display')
    .option(
      '--threads <count>',
      'threads of the wasm backend: 1 to 8, or auto for one per core (default: $FINEPRUNE_WASM_THREADS, else 1)',
      wasmThreadsArgument,
    )
    .addOption(pluginTimeoutOption())
    .action(async (file: string, options: Record<string, unknown>) => {
      const json = options.json === true;
      const controller = new AbortController();
      const removeHandler = io.onInterrupt?.(() => controller.abort());
      const progress = createProgress(io.stderr);
      const stepEvery = { value: 1 };
      try {
        const loaded = await readRecipeFile(file);
        for (const name of loaded.recipe.plugins)
          await loadPluginPackage(registry, name, importOptions(options, loaded.baseDirectory));
        const recipe =
          options.maxSteps !== undefined ||
          options.trainLimit !== undefined ||
          options.testLimit !== undefined
            ? shortenRecipe(loaded.recipe, registry, {
                ...(options.maxSteps !== undefined ? { maxSteps: options.maxSteps as number } : {}),
                ...(options.trainLimit !== undefined ? { trainLimit: options.trainLimit as number } : {}),
                ...(options.testLimit !== undefined ? { testLimit: options.testLimit as number } : {}),
              })
            : loaded.recipe;
        stepEvery.value = Math.max(1, Math.floor(recipe.training.steps / 100));
        const onEvent = (event: RunEvent) => {
          if (json) {
            if (
              event.type === 'step' &&
              event.step % stepEvery.value !== 0 &&
              event.step !== event.totalSteps
            )
              return;
            const payload =
              event.type === 'done'
                ? {
                    type: 'done',
                    outputDirectory: event.outputDirectory,
                    final: event.record.final,
                    dense: event.record.dense ?? null,
                    steps: event.record.steps,
                  }
                : event;
            io.stdout.write(`${JSON.stringify(payload)}\n`);
          } else if (!options.quiet) {
            progress.onEvent(event);
          }
        };
        const outcome = await runRecipe({
          recipe,
          baseDirectory: loaded.baseDirectory,
          source: loaded.source,
          registry,
          resume: options.resume === true,
          pluginTimeoutMs: (options.pluginTimeout as number) * 1000,
          signal: controller.signal,
          onEvent,
          ...(typeof options.checkpoint === 'string' ? { checkpointDirectory: options.checkpoint } : {}),
          ...(typeof options.out === 'string' ? { outputDirectory: path.resolve(options.out) } : {}),
          ...(options.threads !== undefined ? { wasmThreads: options.threads as WasmThreads } : {}),
        });
        progress.finish();
        if (outcome.status === 'interrupted') {
          exitCode = ExitCodes.INTERRUPTED;
          return;
        }
        if (!json && outcome.record) {
          const record = outcome.record;
          io.stdout.write(`${layerTable(record.layers)}\n\n${encoderSection(record.layers)}`);
          io.stdout.write(
            `test accuracy ${(record.final.accuracy * 100).toFixed(2)}%${record.dense ? ` (dense ${(record.dense.accuracy * 100).toFixed(2)}%)` : ''} at ${((1 - record.final.remaining) * 100).toFixed(2)}% sparsity\n`,
          );
          io.stdout.write(
            `results: ${outcome.outputDirectory} (report.html, run.json, model/, checkpoint/)\n`,
          );
        }
      } catch (error) {
        progress.finish();
        exitCode = reportError(io, error, json);
      } finally {
        removeHandler?.();
      }
    });

  program
    .command('report')
    .description(
      'Per-layer table (shape, kept, sparsity) and kept-weight histograms of a model, checkpoint or run; optionally the HTML report.',
    )
    .argument(
      '<model>',
      'a run output directory, a checkpoint directory, a saved model directory, or a sweep result file (bench/results/*.json) to draw accuracy against remaining weights',
    )
    .option('--html <file>', 'write the HTML report (with the papers’ plots) to this file')
    .addOption(
      new Option(
        '--compare <runs...>',
        'other runs (run.json files or output directories) to plot alongside',
      ),
    )
    .option('--json', 'print the report as JSON on stdout')
    .action(async (target: string, options: { html?: string; compare?: string[]; json?: boolean }) => {
      try {
        if (isSweepTarget(target)) {
          await reportSweep([target, ...(options.compare ?? [])], options, io);
          return;
        }
        const resolved = path.resolve(target.replace(/model\.json$/, ''));
        const compactFile = compactExportPath(resolved);
        if (compactFile !== undefined) {
          await setBackend('cpu');
          const report = await readCompactReport(compactFile);
          io.stdout.write(options.json ? `${JSON.stringify(report)}\n` : `${compactReportText(report)}\n`);
          return;
        }
        let record: RunRecord | undefined;
        let summary: SavedModelSummary;
        if (existsSync(path.join(resolved, 'run.json'))) {
          record = await readRunRecord(resolved);
          const checkpoint = path.join(resolved, 'checkpoint');
          await setBackend('cpu');
          const sizes = existsSync(path.join(checkpoint, 'model.json'))
            ? (await readSavedModel(checkpoint)).sizes
            : undefined;
          summary = {
            kind: 'checkpoint',
            step: record.steps,
            layers: record.layers,
            samples: record.samples,
            ...(sizes ? { sizes } : {}),
          };
        } else {
          await setBackend('cpu');
          summary = await readSavedModel(modelDirectory(target).directory);
        }
        const compared = await Promise.all((options.compare ?? []).map(readRunRecord));
        if (options.html) {
          const primary: RunRecord = record ?? {
            formatVersion: 1,
            name: path.basename(resolved),
            method: summary.kind === 'checkpoint' ? 'checkpoint' : 'saved model',
            backend: 'n/a',
            steps: summary.step ?? 0,
            seed: 0,
            evaluations: [],
            lossChanges: [],
            seconds: 0,
            final: {
              accuracy: Number.NaN,
              loss: Number.NaN,
              remaining:
                summary.layers.reduce((sum, row) => sum + row.kept, 0) /
                Math.max(
                  1,
                  summary.layers.reduce((sum, row) => sum + row.total, 0),
                ),
            },
            layers: summary.layers,
            samples: summary.samples,
            recipe: null,
            finishedAt: new Date().toISOString(),
          };
          await writeFileAtomic(path.resolve(options.html), renderHtmlReport([primary, ...compared]));
        }
        if (options.json) {
          io.stdout.write(
            `${JSON.stringify({
              kind: record ? 'run' : summary.kind,
              step: summary.step ?? null,
              layers: summary.layers,
              histograms: summary.samples.map((sample) => ({ name: sample.name, ...sample.keptHistogram })),
              ...(summary.sizes ? { sizes: summary.sizes } : {}),
              ...(record
                ? { final: record.final, dense: record.dense ?? null, evaluations: record.evaluations }
                : {}),
              ...(options.html ? { html: path.resolve(options.html) } : {}),
            })}\n`,
          );
        } else {
          io.stdout.write(
            `${layerTable(summary.layers)}\n\n${encoderSection(summary.layers)}kept weights per parameter:\n${keptHistograms(summary.samples)}\n`,
          );
          if (summary.sizes) io.stdout.write(`\n${sizeLine(summary.sizes)}\n`);
          if (options.html) io.stdout.write(`\nHTML report: ${path.resolve(options.html)}\n`);
        }
      } catch (error) {
        exitCode = reportError(io, error, options.json === true);
      }
    });

  program
    .command('export')
    .description(
      'Export a checkpoint (or a run’s) with its masks applied: a TF.js model (float32, or TF.js’s uint8/uint16/float16 quantization; stock tf.loadLayersModel reads it) or a compact sparse file (float32/float16/int8 values; @fineprune/sparse reads it). Never larger than the model the run started from unless --allow-larger.',
    )
    .argument(
      '<model>',
      'a checkpoint directory or a run output directory (TF.js layers or BERT), or a Hugging Face BERT folder (config.json + model.safetensors)',
    )
    .requiredOption('--out <directory>', 'where to write the export')
    .option('--strip', 'apply the masks and drop scores (always done)', true)
    .addOption(
      new Option(
        '--format <format>',
        'tfjs: model.json + weights (layers models); sparse: one model.fpsparse (layers or BERT models)',
      )
        .choices(['tfjs', 'sparse'])
        .default('tfjs'),
    )
    .addOption(
      new Option(
        '--values <values>',
        'how values are stored: tfjs float32|float16|uint8|uint16 (default: the quantization of the model the run started from, else float32); sparse float32|float16|int8 (default float32)',
      ).choices(['float32', 'float16', 'int8', 'uint8', 'uint16']),
    )
    .option('--allow-larger', 'write the export even when it is larger than the model the run started from')
    .option(
      '--shrink',
      'remove the pruned neurons and filters physically: a smaller dense TF.js model (layers models; with --format sparse, the compact export of that model)',
    )
    .option(
      '--allow-unverified',
      'export a version-1 checkpoint, written before checkpoints carried content hashes',
    )
    .option('--json', 'print the result as JSON on stdout')
    .action(
      async (
        target: string,
        options: {
          out: string;
          json?: boolean;
          allowUnverified?: boolean;
          allowLarger?: boolean;
          shrink?: boolean;
          format: ExportFormat;
          values?: ExportValues;
        },
      ) => {
        if (options.values !== undefined && !EXPORT_VALUES[options.format].includes(options.values)) {
          io.stderr.write(
            `error: --values ${options.values} does not fit --format ${options.format}, which stores ${EXPORT_VALUES[options.format].join(', ')}.\n`,
          );
          exitCode = ExitCodes.USAGE;
          return;
        }
        try {
          const summary = await exportCheckpoint(modelDirectory(target).directory, options.out, {
            allowUnverified: options.allowUnverified === true,
            allowLarger: options.allowLarger === true,
            shrink: options.shrink === true,
            format: options.format,
            ...(options.values ? { values: options.values } : {}),
          });
          const kept = summary.layers.reduce((sum, row) => sum + row.kept, 0);
          const total = summary.layers.reduce((sum, row) => sum + row.total, 0);
          const smaller = summary.referenceBytes / Math.max(1, summary.bytes);
          if (options.json) {
            io.stdout.write(
              `${JSON.stringify({
                directory: path.resolve(options.out),
                format: summary.format,
                values: summary.values,
                files: summary.files,
                bytes: summary.bytes,
                referenceBytes: summary.referenceBytes,
                kept,
                total,
                sparsity: total ? 1 - kept / total : 0,
                ...(summary.shrink ? { shrink: summary.shrink } : {}),
              })}\n`,
            );
          } else {
            const how =
              summary.format === 'sparse'
                ? 'compact sparse export; load it with @fineprune/sparse'
                : 'stripped TF.js model; load it with tf.loadLayersModel';
            io.stdout.write(
              `${how} (${summary.values}) written to ${summary.files[0]}: ${summary.bytes} bytes, ${smaller.toFixed(1)}× smaller than the ${summary.referenceBytes} bytes of the model it came from; ${((1 - kept / Math.max(1, total)) * 100).toFixed(2)}% of prunable weights are zero\n`,
            );
            if (summary.shrink) io.stdout.write(shrinkLines(summary.shrink));
          }
        } catch (error) {
          exitCode = reportError(io, error, options.json === true);
        }
      },
    );

  program
    .command('plugins')
    .description('List the plugin ids recipes can use (built-in, plus the packages given).')
    .argument('[packages...]', 'plugin packages to load first')
    .option('--json', 'print JSON')
    .addOption(pluginTimeoutOption())
    .action(async (packages: string[], options: { json?: boolean; pluginTimeout: number }) => {
      try {
        for (const name of packages)
          await loadPluginPackage(registry, name, importOptions(options, process.cwd()));
        const list = registry.list().map((definition) => ({
          kind: definition.kind,
          id: definition.id,
          description: definition.description ?? '',
          package: definition.package ?? 'built-in',
        }));
        if (options.json) io.stdout.write(`${JSON.stringify(list)}\n`);
        else
          for (const entry of list)
            io.stdout.write(
              `${entry.kind.padEnd(9)} ${entry.id.padEnd(22)} ${entry.description} [${entry.package}]\n`,
            );
      } catch (error) {
        exitCode = reportError(io, error, options.json === true);
      }
    });

  program
    .command('validate')
    .description(
      'Check a recipe without running it: everything `run` checks before it loads data (plugin ids and options, schedule lengths, model size, output and checkpoint directories), then the contents of its own data files, read through as `run` reads them (every row of data.text, every image of data.images).',
    )
    .argument('<recipe>', 'the recipe file')
    .option('--checkpoint <directory>', 'the checkpoint directory `run` would use')
    .option('--out <directory>', 'the output directory `run` would use')
    .option('--json', 'print JSON')
    .addOption(pluginTimeoutOption())
    .action(async (file: string, options: Record<string, unknown>) => {
      try {
        const { recipe, baseDirectory, source } = await readRecipeFile(file);
        await prepareRun({
          recipe,
          baseDirectory,
          source,
          registry,
          pluginTimeoutMs: (options.pluginTimeout as number) * 1000,
          ...(typeof options.checkpoint === 'string' ? { checkpointDirectory: options.checkpoint } : {}),
          ...(typeof options.out === 'string' ? { outputDirectory: path.resolve(options.out) } : {}),
        });
        const data = await checkRecipeData(recipe, baseDirectory);
        if (options.json)
          io.stdout.write(
            `${JSON.stringify({ valid: true, name: recipe.name, ...(data ? { data } : {}) })}\n`,
          );
        else
          io.stdout.write(
            `${file}: valid${
              data
                ? ` (${data.source}: ${data.train} training and ${data.validation} validation examples, labels ${data.labels.slice(0, 10).join(', ')}${data.labels.length > 10 ? ', …' : ''})`
                : ''
            }\n`,
          );
      } catch (error) {
        exitCode = reportError(io, error, options.json === true);
      }
    });

  program
    .command('schema')
    .description('Print the JSON Schema of recipes (also published as @fineprune/recipes/schema.json).')
    .action(() => {
      io.stdout.write(`${JSON.stringify(recipeJsonSchema(), null, 2)}\n`);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ||
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version'
        ? ExitCodes.OK
        : ExitCodes.USAGE;
    }
    return reportError(io, error, false);
  }
  return exitCode;
}
