/**
 * Every REST route the client calls, by method name: the one table the client's methods
 * are built from. `test/openapi.test.js` checks it against the daemon's
 * `GET /v1/openapi.json` both ways (a route with no method, a method with no route), and
 * the types of the methods come from `Operations` in `schema.gen.ts` under the same key,
 * so a route the document drops stops the SDK from compiling.
 */
export const ROUTES = {
  // Public
  health: ['GET', '/v1/health'],
  ready: ['GET', '/v1/ready'],
  openapi: ['GET', '/v1/openapi.json'],
  metrics: ['GET', '/metrics'],
  // Operator credentials
  login: ['POST', '/v1/admin/login'],
  createOperatorKey: ['POST', '/v1/operator-keys'],
  listOperatorKeys: ['GET', '/v1/operator-keys'],
  revokeOperatorKey: ['POST', '/v1/operator-keys/{id}/revoke'],
  // Wallets and policies
  registerWallet: ['POST', '/v1/wallets'],
  listWallets: ['GET', '/v1/wallets'],
  getWallet: ['GET', '/v1/wallets/{id}'],
  getBalance: ['GET', '/v1/wallets/{id}/balance'],
  setPolicy: ['PUT', '/v1/wallets/{id}/policy'],
  getPolicy: ['GET', '/v1/wallets/{id}/policy'],
  getPolicySummary: ['GET', '/v1/wallets/{id}/policy/summary'],
  evaluateAction: ['POST', '/v1/wallets/{id}/policy/evaluate'],
  devFund: ['POST', '/v1/wallets/{id}/dev/fund'],
  // Sessions
  createSession: ['POST', '/v1/sessions'],
  listSessions: ['GET', '/v1/sessions'],
  revokeSession: ['POST', '/v1/sessions/{id}/revoke'],
  renewSession: ['POST', '/v1/sessions/renew'],
  currentSession: ['GET', '/v1/session'],
  // Sends and signatures
  sendTransfer: ['POST', '/v1/wallets/{id}/transactions'],
  dryRun: ['POST', '/v1/wallets/{id}/transactions/dry-run'],
  sendContractCall: ['POST', '/v1/wallets/{id}/contract-calls'],
  signTypedData: ['POST', '/v1/wallets/{id}/sign-typed-data'],
  signMessage: ['POST', '/v1/wallets/{id}/sign-message'],
  signHash: ['POST', '/v1/wallets/{id}/sign-hash'],
  listTransactions: ['GET', '/v1/wallets/{id}/transactions'],
  getTransaction: ['GET', '/v1/transactions/{id}'],
  cancelTransaction: ['POST', '/v1/transactions/{id}/cancel'],
  speedUpTransaction: ['POST', '/v1/transactions/{id}/speed-up'],
  // Held transactions, owners, freeze
  listApprovals: ['GET', '/v1/approvals'],
  getApproval: ['GET', '/v1/approvals/{id}'],
  approve: ['POST', '/v1/approvals/{id}/approve'],
  deny: ['POST', '/v1/approvals/{id}/deny'],
  ownerApproval: ['GET', '/v1/owner/approvals/{id}'],
  listOwners: ['GET', '/v1/wallets/{id}/owners'],
  addOwner: ['POST', '/v1/wallets/{id}/owners'],
  setOwnerQuorum: ['PUT', '/v1/wallets/{id}/owners/quorum'],
  freezeWallet: ['POST', '/v1/wallets/{id}/freeze'],
  freezeAll: ['POST', '/v1/freeze'],
  unfreezeText: ['GET', '/v1/wallets/{id}/unfreeze'],
  unfreeze: ['POST', '/v1/wallets/{id}/unfreeze'],
  ownerUnfreezeText: ['GET', '/v1/owner/wallets/{id}/unfreeze'],
  // Agent keys (docs/AGENTS.md)
  listAgents: ['GET', '/v1/wallets/{id}/agents'],
  listSubaccounts: ['GET', '/v1/wallets/{id}/subaccounts'],
  createSubaccount: ['POST', '/v1/wallets/{id}/subaccounts'],
  payX402: ['POST', '/v1/wallets/{id}/x402/pay'],
  registerAgent: ['POST', '/v1/wallets/{id}/agents'],
  revokeAgent: ['POST', '/v1/agents/{address}/revoke'],
  // Audit
  auditVerify: ['GET', '/v1/audit/verify'],
  auditTail: ['GET', '/v1/audit/tail'],
  // Webhooks
  createWebhook: ['POST', '/v1/webhooks'],
  listWebhooks: ['GET', '/v1/webhooks'],
  deleteWebhook: ['DELETE', '/v1/webhooks/{id}'],
  listDeliveries: ['GET', '/v1/webhooks/{id}/deliveries'],
} as const satisfies Record<string, readonly [HttpMethod, string]>;

/** An HTTP method the API uses. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** A method name of the client that is one REST route. */
export type RouteName = keyof typeof ROUTES;

/**
 * Routes docs/API.md documents that the OpenAPI document leaves out on purpose:
 * `/metrics` answers Prometheus text, not JSON. The OpenAPI check also fails if one of
 * these appears in the document (then it belongs in the typed part).
 */
export const NOT_IN_OPENAPI: readonly RouteName[] = ['metrics'];
