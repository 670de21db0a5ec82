import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import type { Plugin, PluginHooks } from './types';

/** The names of the lifecycle hooks. */
export type HookName = keyof PluginHooks;

/**
 * Wraps an error thrown by a plugin so that it names the plugin, the hook (or method) and the
 * step. A `FinepruneError` keeps its code and fix; any other error becomes `PLUGIN_HOOK_FAILED`.
 *
 * @example
 * ```ts
 * try { await hook(); } catch (error) { throw tagPluginError(error, 'magnitude', 'compute', 10); }
 * ```
 */
export function tagPluginError(error: unknown, pluginId: string, hook: string, step: number): FinepruneError {
  const cause = error instanceof Error ? error : new Error(String(error));
  if (FinepruneError.is(error) && error.details?.plugin !== undefined) return error;
  const where = `Plugin "${pluginId}" failed in ${hook} at step ${step}`;
  if (FinepruneError.is(error)) {
    return new FinepruneError({
      code: error.code,
      message: `${where}: ${error.message}`,
      fix: error.fix,
      cause: error,
      details: { ...error.details, plugin: pluginId, hook, step },
    });
  }
  return new FinepruneError({
    code: ErrorCodes.PLUGIN_HOOK_FAILED,
    message: `${where}: ${cause.message}`,
    fix: `This is a fault in the plugin "${pluginId}" or in the options given to it; see the cause.`,
    cause,
    details: { plugin: pluginId, hook, step },
  });
}

/**
 * Runs one hook on every plugin that implements it, in order, tagging errors.
 *
 * @example
 * ```ts
 * const driver = new PluginDriver([scores, mask, logger]);
 * await driver.run('onStepEnd', { ...context, result });
 * ```
 */
export class PluginDriver {
  readonly plugins: readonly Plugin[];

  constructor(plugins: readonly Plugin[]) {
    const unique: Plugin[] = [];
    for (const plugin of plugins) {
      if (typeof plugin?.id !== 'string' || plugin.id.length === 0) {
        throw new FinepruneError({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: 'A plugin has no id.',
          fix: 'Give every plugin object a non-empty string `id`.',
        });
      }
      if (!unique.includes(plugin)) unique.push(plugin);
    }
    this.plugins = unique;
  }

  /** True when some plugin has `hook`. */
  has(hook: HookName): boolean {
    return this.plugins.some((plugin) => typeof plugin[hook] === 'function');
  }

  /** Calls `hook` on every plugin that has it. */
  async run<H extends HookName>(hook: H, context: Parameters<NonNullable<PluginHooks[H]>>[0]): Promise<void> {
    for (const plugin of this.plugins) {
      const fn = plugin[hook] as ((context: unknown) => unknown) | undefined;
      if (!fn) continue;
      try {
        await fn.call(plugin, context);
      } catch (error) {
        throw tagPluginError(error, plugin.id, hook, (context as { step: number }).step);
      }
    }
  }

  /** Calls one plugin method, tagging errors with the plugin and method name. */
  static async call<T>(plugin: Plugin, method: string, step: number, fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw tagPluginError(error, plugin.id, method, step);
    }
  }

  /** Synchronous variant of {@link PluginDriver.call}, for code inside a gradient tape. */
  static callSync<T>(plugin: Plugin, method: string, step: number, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw tagPluginError(error, plugin.id, method, step);
    }
  }
}
