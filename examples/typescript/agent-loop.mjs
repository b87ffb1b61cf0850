// An agent loop with the Vercel AI SDK tools of mandate-sdk, driven by a scripted model:
// the "model" is a fixed list of tool calls (each may read the previous result), so the
// loop runs without any model service. Everything goes to the daemon on 127.0.0.1.
//
//   (cd sdks/typescript && npm ci && npm run build)
//   MANDATE_URL=http://127.0.0.1:3100 MANDATE_SESSION_TOKEN=mnd_sess_… MANDATE_WALLET=wal_… \
//     node examples/typescript/agent-loop.mjs 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
//
// The session needs the `broadcast` scope (mandate session create --scope broadcast).
import { MandateClient } from '../../sdks/typescript/dist/index.js';
import { aiTools } from '../../sdks/typescript/dist/ai.js';

const { MANDATE_URL = 'http://127.0.0.1:3100', MANDATE_SESSION_TOKEN: token, MANDATE_WALLET: wallet } = process.env;
const to = process.argv[2];
if (!token || !wallet || !to) {
  console.error('usage: MANDATE_SESSION_TOKEN=… MANDATE_WALLET=wal_… node agent-loop.mjs RECIPIENT');
  process.exit(2);
}

const tools = aiTools(new MandateClient({ baseUrl: MANDATE_URL, token }), { wallet, band: 'broadcast' });

// The scripted model: each turn sees the last tool result and names the next call.
const script = [
  () => ({ tool: 'get_balance', input: {} }),
  () => ({ tool: 'get_policy_summary', input: {} }),
  () => ({ tool: 'prepare_transfer', input: { to, amount: '0.1' } }),
  (last) => (last.decision?.verdict === 'allow' ? { tool: 'send_transfer', input: { to, amount: '0.1', confirm: true } } : null),
  (last) => ({ tool: 'get_transaction', input: { id: last.id }, until: (tx) => tx.status === 'confirmed' || tx.status === 'failed' }),
  () => ({ tool: 'send_transfer', input: { to, amount: '50', confirm: true } }),
];

let last = null;
for (const [turn, next] of script.entries()) {
  const call = next(last);
  if (!call) break;
  const tool = tools[call.tool];
  if (!tool) throw new Error(`the model asked for ${call.tool}, which this band does not offer`);
  for (let poll = 0; ; poll++) {
    last = await tool.execute(call.input, { toolCallId: `call_${turn}_${poll}`, messages: [] });
    if (!call.until || call.until(last) || poll >= 100) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const summary = last.error?.code ? `error ${last.error.code}: ${last.error.message}` : JSON.stringify(last);
  console.log(`[${turn}] ${call.tool}(${JSON.stringify(call.input)}) -> ${summary}`);
}
