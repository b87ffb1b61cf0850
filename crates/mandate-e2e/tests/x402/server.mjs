// A real x402 resource server with its facilitator, from the npm packages pinned in the
// repository's package.json (@x402/express, @x402/evm, @x402/core, viem), for
// crates/mandate-e2e/tests/daemon/x402.rs. The facilitator settles on the anvil node
// at RPC_URL with the dev key FACILITATOR_KEY (it pays the gas; EIP-3009 moves the
// token from the payer). Routes: GET /weather costs PRICE base units of TOKEN, paid
// to PAY_TO with the `exact` scheme; GET /pricey costs PRICE_HIGH; GET /shifty asks
// PRICE the first time and twice that afterwards (a server that changes its price
// between the 402 and the paid request). GET /last-payment (free) shows the last
// PAYMENT-SIGNATURE header received, so a test can replay it as an eavesdropper would;
// GET /stats (free) counts the other requests it has received.
// Prints one JSON line `{"listening": PORT}` when ready; stops when stdin closes.
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { ExactEvmScheme as ServerScheme } from "@x402/evm/exact/server";
import { ExactEvmScheme as FacilitatorScheme } from "@x402/evm/exact/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { x402Facilitator } from "@x402/core/facilitator";
import { createWalletClient, defineChain, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const rpcUrl = env("RPC_URL");
const chainId = Number(env("CHAIN_ID"));
const network = `eip155:${chainId}`;
const chain = defineChain({
  id: chainId,
  name: "anvil",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [rpcUrl] } },
});
const account = privateKeyToAccount(env("FACILITATOR_KEY"));
const wallet = createWalletClient({ account, chain, transport: http(rpcUrl) }).extend(publicActions);
const facilitator = new x402Facilitator().register(
  network,
  new FacilitatorScheme(toFacilitatorEvmSigner(Object.assign(wallet, { address: account.address }))),
);
const facilitatorClient = {
  verify: (payload, requirements) => facilitator.verify(payload, requirements),
  settle: (payload, requirements) => facilitator.settle(payload, requirements),
  getSupported: async () => facilitator.getSupported(),
};
const resourceServer = new x402ResourceServer(facilitatorClient).register(network, new ServerScheme());
const accepts = (amount) => ({
  scheme: "exact",
  price: { amount, asset: env("TOKEN"), extra: { name: env("TOKEN_NAME"), version: "1" } },
  network,
  payTo: env("PAY_TO"),
  maxTimeoutSeconds: 300,
});

let shiftyCalls = 0;
const shifty = { ...accepts(env("PRICE")), price: () => {
  shiftyCalls += 1;
  const amount = shiftyCalls === 1 ? env("PRICE") : String(2 * Number(env("PRICE")));
  return { amount, asset: env("TOKEN"), extra: { name: env("TOKEN_NAME"), version: "1" } };
} };

let lastPayment = null;
let requests = 0;
const app = express();
app.get("/stats", (_req, res) => res.json({ requests }));
app.use((req, _res, next) => {
  requests += 1;
  if (req.headers["payment-signature"]) lastPayment = req.headers["payment-signature"];
  next();
});
app.get("/last-payment", (_req, res) => res.json({ header: lastPayment }));
app.use(
  paymentMiddleware(
    {
      "GET /weather": { accepts: accepts(env("PRICE")), description: "today's weather" },
      "GET /pricey": { accepts: accepts(env("PRICE_HIGH")), description: "an expensive report" },
      "GET /shifty": { accepts: shifty, description: "a price that changes" },
    },
    resourceServer,
  ),
);
app.get("/weather", (_req, res) => res.json({ weather: "sunny", temperature: 21 }));
app.get("/pricey", (_req, res) => res.json({ report: "expensive" }));
app.get("/free", (_req, res) => res.json({ free: true }));
app.get("/shifty", (_req, res) => res.json({ shifty: true }));

const port = Number(env("PORT"));
app.listen(port, "127.0.0.1", () => console.log(JSON.stringify({ listening: port })));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
