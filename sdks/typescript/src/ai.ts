/**
 * The Vercel AI SDK adapter (`mandate-sdk/ai`): the tools of {@link mandateTools} as AI
 * SDK `tool()` definitions, their input schemas given with `jsonSchema()` and checked
 * before a call. `ai` is an optional peer dependency: only this entry point imports it.
 *
 * ```ts
 * import { generateText } from 'ai';
 * import { aiTools } from 'mandate-sdk/ai';
 * const tools = aiTools(client.withToken(sessionToken), { wallet, band: 'prepare' });
 * await generateText({ model, tools, prompt: '…' });
 * ```
 */
import { jsonSchema, tool, type Tool } from 'ai';
import type { MandateClient } from './client.js';
import { checkInput, mandateTools, type ToolOptions } from './tools.js';

/** The band's tools as AI SDK tools, keyed by name (a `ToolSet`). */
export function aiTools(client: MandateClient, options: ToolOptions = {}): Record<string, Tool<Record<string, unknown>, unknown>> {
  const out: Record<string, Tool<Record<string, unknown>, unknown>> = {};
  for (const [name, definition] of Object.entries(mandateTools(client, options))) {
    const schema = jsonSchema<Record<string, unknown>>(definition.parameters as Parameters<typeof jsonSchema>[0], {
      validate: (value) => {
        const problem = checkInput(definition.parameters, value);
        return problem
          ? { success: false, error: new Error(`${problem.field} ${problem.message}`) }
          : { success: true, value: value as Record<string, unknown> };
      },
    });
    out[name] = tool({
      description: definition.description,
      inputSchema: schema,
      execute: (input: Record<string, unknown>) => definition.execute(input),
    });
  }
  return out;
}

export { mandateTools, type ToolOptions } from './tools.js';
