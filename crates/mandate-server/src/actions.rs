//! From a request to a decided action: token lookup, calldata, decoding into a typed
//! [`Action`], and the context the policy needs (history, prices, fees, simulation).
//! Also the policy explain endpoint and the off-chain signature endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use mandate_chain::contracts::Simulation;
use mandate_chain::SignPayload;
use mandate_core::action::{Action, Asset};
use mandate_core::amount::format_units;
use mandate_core::decode::decode_call;
use mandate_core::policy::{
    evaluate, Context, Decision, DenialKind, Fees, Policy, PriceQuote, SimulationOutcome, Tier, Verdict,
};
use mandate_core::ErrorCode;
use mandate_store::{ReserveView, WalletRecord};
use serde_json::{json, Value};

use crate::agent_auth::{narrow, AgentPolicy};
use crate::audit::audit_entry;
use crate::auth::Principal;
use crate::context::{policy_of, refuse_if_frozen, wallet_for};
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::request::body_bytes;
use crate::request::{address_field, parse_json, EvaluateRequest, SignRequest, TransferRequest};
use crate::state::AppState;
use crate::task::blocking;

/// Cap on `max_fee_per_gas` (500 gwei).
pub(crate) const FEE_CAP_WEI: u128 = 500_000_000_000;

/// Largest gas a native transfer may use (21 000 to an account; a contract recipient's
/// fallback may need more, but not unbounded: fees are paid on top of the policy's caps).
pub(crate) const MAX_TRANSFER_GAS: u64 = 100_000;

/// Largest gas of a contract call (token transfers included), after the 20 % margin.
pub(crate) const MAX_CALL_GAS: u64 = 2_000_000;

/// A transaction to build: what the wallet sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxPlan {
    /// `to`.
    pub(crate) to: Address,
    /// Native value in wei.
    pub(crate) value: U256,
    /// Calldata.
    pub(crate) data: Vec<u8>,
    /// The chain it is for.
    pub(crate) chain_id: u64,
}

impl TxPlan {
    /// The plan a stored transaction was reserved with (its calldata as stored, never rebuilt).
    pub(crate) fn of_record(tx: &mandate_store::TxRecord) -> ApiResult<TxPlan> {
        let corrupt = |what: &str| ApiError::internal(format!("{}: stored {what} is unreadable", tx.id));
        Ok(TxPlan {
            to: tx.to.parse().map_err(|_| corrupt("recipient"))?,
            value: U256::from_str_radix(&tx.value_wei, 10).map_err(|_| corrupt("value"))?,
            data: hex::decode(tx.data.trim_start_matches("0x")).map_err(|_| corrupt("calldata"))?,
            chain_id: tx.chain_id.ok_or_else(|| corrupt("chain"))?,
        })
    }
}

/// A token as the daemon knows it.
#[derive(Debug, Clone)]
pub(crate) struct TokenInfo {
    pub(crate) address: Address,
    pub(crate) decimals: u8,
    /// As the contract reports it (untrusted text, sanitised; `?` when unreadable).
    pub(crate) symbol: String,
}

/// Resolves a token named by the request: a symbol the wallet's policy declares, or a
/// contract address. Decimals and symbol are read from the contract once and cached.
pub(crate) async fn token_info(
    state: &AppState,
    chain_id: u64,
    policy: Option<&Policy>,
    text: &str,
) -> ApiResult<TokenInfo> {
    let address = match policy.and_then(|p| p.token(text)) {
        Some(spec) => spec.address,
        None if text.starts_with("0x") => address_field("token", text)?,
        None => {
            return Err(ApiError::new(
                ErrorCode::UnknownToken,
                format!("token {text:?} is not declared in the wallet's policy; give the contract address"),
            ))
        }
    };
    token_at(state, chain_id, address).await
}

/// Decimals and symbol of the token at `address` on chain `chain_id` (cached after
/// the first read).
pub(crate) async fn token_at(state: &AppState, chain_id: u64, address: Address) -> ApiResult<TokenInfo> {
    if let Some((decimals, symbol)) = state.store.token(chain_id, &address)? {
        return Ok(TokenInfo { address, decimals, symbol });
    }
    let node = state.node(chain_id)?;
    let decimals = node.erc20_decimals(address).await?;
    let symbol = node.erc20_symbol(address).await.unwrap_or_else(|_| "?".into());
    state.store.cache_token(chain_id, &address, decimals, &symbol)?;
    Ok(TokenInfo { address, decimals, symbol })
}

/// The transaction a transfer request becomes.
pub(crate) async fn transfer_plan(
    state: &AppState,
    policy: Option<&Policy>,
    request: &TransferRequest,
) -> ApiResult<TxPlan> {
    let chain_id = state.chain_of_request(request.chain.as_deref())?;
    let Some(token) = &request.token else {
        return Ok(TxPlan { to: request.to, value: request.amount.resolve(18, "amount")?, data: Vec::new(), chain_id });
    };
    let token = token_info(state, chain_id, policy, token).await?;
    let amount = request.amount.resolve(token.decimals, "amount")?;
    let mut data = mandate_core::decode::ERC20_TRANSFER.to_vec();
    data.extend_from_slice(request.to.into_word().as_slice());
    data.extend_from_slice(&amount.to_be_bytes::<32>());
    Ok(TxPlan { to: token.address, value: U256::ZERO, data, chain_id })
}

/// Decodes the transaction into the action the policy judges.
pub(crate) fn decode_plan(policy: Option<&Policy>, plan: &TxPlan) -> ApiResult<Action> {
    let registered = |to: Address, selector: [u8; 4]| policy.and_then(|p| p.registered_function(to, selector));
    decode_call(plan.to, plan.value, &plan.data, &registered)
        .map_err(|e| ApiError::new(e.code, e.message).with_details(json!({"field": "data"})))
}

/// A fresh aggregator price for the asset the action moves, when a USD rule needs it (a
/// feed that fails is left out: the engine then denies with `PRICE_UNAVAILABLE`, never
/// guesses). Earlier spends carry the USD value recorded when they were decided.
pub(crate) async fn prices(
    state: &AppState,
    chain_id: u64,
    policy: Option<&Policy>,
    action: &Action,
) -> BTreeMap<Asset, PriceQuote> {
    let mut quotes = BTreeMap::new();
    let Some(policy) = policy.filter(|p| p.uses_usd()) else { return quotes };
    let Some((moved, _)) = action.outflow() else { return quotes };
    // The feeds are read on the action's chain (an aggregator's address is per chain).
    let Ok(node) = state.node(chain_id) else { return quotes };
    for (asset, aggregator) in policy.aggregators().filter(|(asset, _)| *asset == moved) {
        match node.latest_round(aggregator).await {
            Ok(round) => {
                quotes.insert(
                    asset,
                    PriceQuote { answer: round.answer, decimals: round.decimals, updated_at: round.updated_at },
                );
            }
            Err(error) => tracing::warn!("price feed for {}: {error}", policy.asset_name(asset)),
        }
    }
    quotes
}

/// What the chain says about a planned transaction.
#[derive(Debug, Clone)]
pub(crate) struct ChainView {
    /// The chain read.
    pub(crate) chain_id: u64,
    pub(crate) prices: BTreeMap<Asset, PriceQuote>,
    pub(crate) simulation: Option<SimulationOutcome>,
    /// Gas limit and fees the transaction would be signed with (`None` when it reverts).
    pub(crate) fees: Option<(u64, mandate_chain::rpc::Fees)>,
    /// Why gas could not be estimated (the call reverts, funds are short).
    pub(crate) estimate_error: Option<String>,
}

/// Simulates (when the policy asks), prices and estimates a planned transaction.
pub(crate) async fn chain_view(
    state: &AppState,
    policy: Option<&Policy>,
    action: &Action,
    from: Address,
    plan: &TxPlan,
    always_simulate: bool,
) -> ApiResult<ChainView> {
    let chain_id = plan.chain_id;
    let node = state.node(chain_id)?;
    let prices = prices(state, chain_id, policy, action).await;
    let simulation = match always_simulate || policy.is_some_and(Policy::requires_simulation) {
        true => Some(match node.simulate(from, plan.to, plan.value, &plan.data).await? {
            Simulation::Success(_) => SimulationOutcome::Success,
            Simulation::Reverted { reason } => SimulationOutcome::Reverted(reason),
        }),
        false => None,
    };
    if matches!(simulation, Some(SimulationOutcome::Reverted(_))) {
        return Ok(ChainView { chain_id, prices, simulation, fees: None, estimate_error: None });
    }
    // Fees and the gas estimate are independent reads: one round trip, not two.
    let (fees, estimate) = tokio::join!(node.fees(), node.estimate_gas(from, plan.to, plan.value, &plan.data));
    let fees = fees?;
    let estimate = match estimate {
        Ok(estimate) => estimate,
        // The policy still decides first: a denied call reports its rule, an allowed
        // one this error (see `require_fees`).
        Err(mandate_chain::ChainError::EstimateFailed(message)) => {
            return Ok(ChainView { chain_id, prices, simulation, fees: None, estimate_error: Some(message) })
        }
        Err(error) => return Err(error.into()),
    };
    let gas = if plan.data.is_empty() {
        if estimate > MAX_TRANSFER_GAS {
            return Err(ApiError::new(
                ErrorCode::FeeCapExceeded,
                format!("a transfer estimated at {estimate} gas is above the cap of {MAX_TRANSFER_GAS} (the recipient's code burns gas)"),
            ));
        }
        estimate
    } else {
        let gas = estimate.saturating_add(estimate / 5);
        if gas > MAX_CALL_GAS {
            return Err(ApiError::new(
                ErrorCode::FeeCapExceeded,
                format!("a call needing {gas} gas (estimate + 20 %) is above the cap of {MAX_CALL_GAS}"),
            ));
        }
        gas
    };
    Ok(ChainView { chain_id, prices, simulation, fees: Some((gas, fees)), estimate_error: None })
}

/// An allowed transaction whose gas could not be estimated is refused (nothing is
/// reserved or signed) with `GAS_ESTIMATION_FAILED`; so is one a `gas_cap` rule denied
/// only because the fees are unknown.
fn require_fees(mut decision: Decision, view: &ChainView) -> Decision {
    let Some(message) = &view.estimate_error else { return decision };
    let fees_unknown = decision.verdict == Verdict::Deny && decision.denial == Some(DenialKind::FeesUnknown);
    if decision.verdict == Verdict::Allow || fees_unknown {
        decision.verdict = Verdict::Deny;
        decision.denial = Some(DenialKind::FeesUnknown);
        decision.code = Some(ErrorCode::GasEstimationFailed);
        decision.rule_id = "gas_estimate".into();
        decision.reason = format!("gas estimation failed: {message}");
    }
    decision
}

/// The policy context for a decision at `now`.
pub(crate) fn context<'a>(
    view: &'a ChainView,
    history: &'a [mandate_core::policy::Spend],
    recipient_seen: bool,
    now: u64,
) -> Context<'a> {
    Context {
        now,
        chain_id: view.chain_id,
        history,
        prices: &view.prices,
        recipient_seen,
        fees: view.fees.map(|(gas, fees)| Fees { gas, max_fee_per_gas: fees.max_fee_per_gas }),
        simulation: view.simulation.as_ref(),
    }
}

/// A reservation's decision under the wallet's policy and, for an agent key with a
/// policy of its own, that one too (docs/AGENTS.md): the agent's policy decides on
/// the agent's own spends, with prices of the feeds it names, and narrows the wallet's
/// decision. The send pipeline and x402 payments decide this way; `decide` is their
/// evaluation of one policy.
pub(crate) struct Mandates {
    wallet: Option<Arc<Policy>>,
    agent: Option<(Arc<AgentPolicy>, ChainView)>,
    view: ChainView,
}

impl Mandates {
    /// The wallet's `policy` and `agent`'s own for `action`, with the chain `view`.
    pub(crate) async fn new(
        state: &AppState,
        policy: Option<Arc<Policy>>,
        agent: Option<Arc<AgentPolicy>>,
        action: &Action,
        view: ChainView,
    ) -> Mandates {
        let agent = match agent {
            Some(agent) => {
                let prices = prices(state, view.chain_id, Some(&agent.policy), action).await;
                let agent_view = ChainView { prices, ..view.clone() };
                Some((agent, agent_view))
            }
            None => None,
        };
        Mandates { wallet: policy, agent, view }
    }

    /// How far back the decision looks: the longer of the two policies' windows.
    pub(crate) fn lookback_secs(&self) -> u64 {
        let wallet = self.wallet.as_deref().map(Policy::lookback_secs).unwrap_or(0);
        self.agent.as_ref().map_or(wallet, |(agent, _)| wallet.max(agent.policy.lookback_secs()))
    }

    /// The wallet's view of the chain (fees, prices of its policy's feeds).
    pub(crate) fn view(&self) -> &ChainView {
        &self.view
    }

    /// The decision on the history `seen` at `now`: the wallet's, narrowed by the agent's.
    pub(crate) fn decide(
        &self,
        seen: &ReserveView,
        now: u64,
        decide: impl Fn(Option<&Policy>, &Context<'_>, &ChainView) -> Decision,
    ) -> Decision {
        let wallet =
            decide(self.wallet.as_deref(), &context(&self.view, &seen.spends, seen.recipient_seen, now), &self.view);
        match &self.agent {
            Some((agent, view)) => {
                let ctx = context(view, &seen.actor_spends, seen.recipient_seen, now);
                narrow(wallet, &agent.agent_id, decide(Some(&agent.policy), &ctx, view))
            }
            None => wallet,
        }
    }
}

/// Off-chain signatures are not queued: an allowed signature in the delay or
/// approval tier is refused (nothing signed) with a code that says which tier it
/// needs. (Transactions in those tiers are held; see `approvals` and `executor`.)
pub(crate) fn hold_tiers(mut decision: Decision) -> Decision {
    if decision.verdict == Verdict::Allow && decision.tier >= Tier::Delay {
        let (code, what) = match decision.tier {
            Tier::Approval => (ErrorCode::ApprovalRequired, "an owner's approval"),
            _ => (ErrorCode::DelayRequired, "a delay"),
        };
        decision.verdict = Verdict::Deny;
        decision.denial = Some(DenialKind::Rule);
        decision.code = Some(code);
        decision.rule_id = decision.tier_rules.first().cloned().unwrap_or_else(|| "tiers".into());
        decision.reason = format!(
            "the policy requires {what}; signatures other than transactions are not queued, so nothing was signed"
        );
    }
    decision
}

/// The daemon's decision on a transaction: the policy's, then an allowed one that
/// cannot be estimated is refused (what a send and its explanation share). Delay
/// and approval tiers stay allowed: the send holds them.
pub(crate) fn decide_transaction(
    policy: Option<&Policy>,
    action: &Action,
    ctx: &Context<'_>,
    view: &ChainView,
) -> Decision {
    require_fees(evaluate(policy, action, ctx), view)
}

/// The wallet's spends within the policy's look-back window (for decisions outside a
/// reservation: signatures and explanations).
fn recent_spends(
    state: &AppState,
    wallet: &str,
    policy: Option<&Policy>,
    now: u64,
) -> ApiResult<Vec<mandate_core::policy::Spend>> {
    let lookback = policy.map(Policy::lookback_secs).unwrap_or(0);
    Ok(state.store.spends(wallet, now.saturating_sub(lookback))?)
}

/// The error a denial becomes (the decision in the details).
pub(crate) fn denial_error(decision: &Decision) -> ApiError {
    let code = decision.code.unwrap_or(ErrorCode::PolicyDenied);
    ApiError::new(code, format!("denied by rule {}: {}", decision.rule_id, decision.reason))
        .with_details(json!(decision))
}

/// The action in plain words and fields, for responses, audit records and the owner.
pub(crate) fn describe(policy: Option<&Policy>, action: &Action) -> Value {
    let name = |asset: Asset| policy.map(|p| p.asset_name(asset)).unwrap_or_else(|| "native".into());
    let amount = |asset: Asset, amount: U256| match policy.and_then(|p| p.decimals(asset)) {
        Some(decimals) => format_units(amount, decimals),
        None => format!("{amount} base units"),
    };
    match action {
        Action::NativeTransfer { to, value } => json!({"kind": action.kind(), "to": to.to_checksum(None),
            "amount": format_units(*value, 18), "amount_wei": value.to_string(), "asset": "native"}),
        Action::TokenTransfer { token, from, to, amount: base } => json!({"kind": action.kind(),
            "token": token.to_checksum(None), "asset": name(Asset::Token(*token)),
            "from": from.map(|f| f.to_checksum(None)), "to": to.to_checksum(None),
            "amount": amount(Asset::Token(*token), *base), "amount_base": base.to_string()}),
        Action::TokenApprove { token, spender, amount: base, increase } => json!({"kind": action.kind(),
            "token": token.to_checksum(None), "asset": name(Asset::Token(*token)), "spender": spender.to_checksum(None),
            "unlimited": *base == U256::MAX, "amount_base": base.to_string(), "increase": increase}),
        Action::ContractCall { to, value, selector, call } => json!({"kind": action.kind(), "to": to.to_checksum(None),
            "value_wei": value.to_string(), "value": format_units(*value, 18), "selector": format!("0x{}", hex::encode(selector)),
            "function": call.as_ref().map(|c| c.signature.clone()),
            "args": call.as_ref().map(|c| c.args.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>())}),
        Action::TypedData(data) => json!({"kind": action.kind(), "primary_type": data.primary_type,
            "chain_id": data.chain_id, "verifying_contract": data.verifying_contract.map(|v| v.to_checksum(None)),
            "domain_name": data.name, "digest": format!("{:#x}", data.signing_hash)}),
        Action::PersonalMessage { message } => json!({"kind": action.kind(), "bytes": message.len(),
            "text": std::str::from_utf8(message).ok()}),
        Action::RawHash { hash } => json!({"kind": action.kind(), "hash": format!("{hash:#x}")}),
        _ => json!({"kind": action.kind()}),
    }
}

/// Refuses a personal message that is, or begins with, an owner text's header
/// (`mandate_chain::approval::is_owner_text`): owner approvals are a domain no
/// wallet signs in. (EIP-712 digests cannot collide with EIP-191 ones: their prefixes
/// differ; a raw hash is covered because no wallet may be an owner.)
fn refuse_owner_text(action: &Action) -> ApiResult<()> {
    let Action::PersonalMessage { message } = action else { return Ok(()) };
    if mandate_chain::approval::is_owner_text(message) {
        return Err(ApiError::new(
            ErrorCode::ReservedMessage,
            "this message begins with an owner header; a wallet never signs owner decisions or ceremonies",
        ));
    }
    Ok(())
}

/// An off-chain signature request, decoded.
struct SignPlan {
    action: Action,
    payload: SignPayload,
}

fn sign_plan(request: SignRequest) -> ApiResult<SignPlan> {
    Ok(match request {
        SignRequest::TypedData(value) => {
            let data = mandate_core::decode::parse_typed_data(&value)
                .map_err(|e| ApiError::new(e.code, e.message).with_details(json!({"field": "typed_data"})))?;
            SignPlan { action: Action::TypedData(data), payload: SignPayload::TypedData(value.to_string()) }
        }
        SignRequest::Message(message) => SignPlan {
            action: Action::PersonalMessage { message: message.clone() },
            payload: SignPayload::PersonalMessage(message),
        },
        SignRequest::Hash(hash) => SignPlan {
            action: Action::RawHash { hash: B256::from(hash) },
            payload: SignPayload::RawHash(B256::from(hash)),
        },
    })
}

/// Evaluates a signature action on the wallet's current history, or on `actor`'s
/// part of it for an agent's own policy (no reservation: signatures move nothing by
/// themselves).
async fn decide_signature(
    state: &AppState,
    wallet: &WalletRecord,
    policy: Option<&Policy>,
    action: &Action,
    actor: Option<&str>,
) -> ApiResult<Decision> {
    let now = now();
    let since = now.saturating_sub(policy.map(Policy::lookback_secs).unwrap_or(0));
    let history = match actor {
        Some(actor) => state.store.actor_spends(&wallet.id, actor, since)?,
        None => state.store.spends(&wallet.id, since)?,
    };
    // An off-chain signature is judged on the default chain (typed data by its domain's
    // chainId, through `allow_chains`).
    let prices = prices(state, state.chain_id(), policy, action).await;
    let view = ChainView { chain_id: state.chain_id(), prices, simulation: None, fees: None, estimate_error: None };
    Ok(hold_tiers(evaluate(policy, action, &context(&view, &history, true, now))))
}

/// `?simulate=true`: simulate the call even when no rule requires it.
#[derive(serde::Deserialize)]
pub(crate) struct EvaluateQuery {
    simulate: Option<bool>,
}

/// `POST /v1/wallets/{id}/policy/evaluate[?simulate=true]`: the full decision for an
/// action, nothing signed or reserved (also `mandate policy test`, and the MCP
/// prepare tools, which always simulate).
pub(crate) async fn evaluate_action(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<EvaluateQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let simulate = query.simulate.unwrap_or(false);
    // Simulating is the prepare band's (it builds the transaction), explaining the read band's.
    let wallet = wallet_for(&state, &principal, &id, if simulate { "prepare" } else { "read" })?;
    let request = EvaluateRequest::parse(&body_bytes(body)?)?;
    explain(&state, &wallet, request, simulate).await.map(Json)
}

/// `POST /v1/wallets/{id}/transactions/dry-run`: [`evaluate_action`] for a transfer.
pub(crate) async fn dry_run(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    let request = TransferRequest::parse(&body_bytes(body)?)?;
    explain(&state, &wallet, EvaluateRequest::Transfer(request), false).await.map(Json)
}

async fn explain(
    state: &AppState,
    wallet: &WalletRecord,
    request: EvaluateRequest,
    simulate: bool,
) -> ApiResult<Value> {
    let policy = policy_of(state, &wallet.id)?;
    explain_under(state, wallet, policy.as_deref(), request, simulate).await
}

/// [`explain`] under a given policy (the dashboard's editor explains a sample action
/// under the policy it is about to save).
pub(crate) async fn explain_under(
    state: &AppState,
    wallet: &WalletRecord,
    policy: Option<&Policy>,
    request: EvaluateRequest,
    simulate: bool,
) -> ApiResult<Value> {
    // What the real request would get: a frozen wallet signs nothing.
    refuse_if_frozen(state, &wallet.id)?;
    let plan = match request {
        EvaluateRequest::Transfer(transfer) => transfer_plan(state, policy, &transfer).await?,
        EvaluateRequest::Call(call) => TxPlan {
            chain_id: state.chain_of_request(call.chain.as_deref())?,
            to: call.to,
            value: call.value,
            data: call.data,
        },
        EvaluateRequest::Sign(sign) => {
            let SignPlan { action, .. } = sign_plan(sign)?;
            refuse_owner_text(&action)?;
            let decision = decide_signature(state, wallet, policy, &action, None).await?;
            return Ok(json!({"action": describe(policy, &action), "decision": decision}));
        }
    };
    let action = decode_plan(policy, &plan)?;
    let from = wallet.address()?;
    let view = chain_view(state, policy, &action, from, &plan, simulate).await?;
    let now = now();
    let history = recent_spends(state, &wallet.id, policy, now)?;
    let seen = match action.recipient() {
        Some(recipient) => state.store.recipient_seen(&wallet.id, &recipient)?,
        None => true,
    };
    // The same decision the real request would get (held tiers, unknown fees included).
    let decision = decide_transaction(policy, &action, &context(&view, &history, seen, now), &view);
    Ok(json!({
        "action": describe(policy, &action),
        "decision": decision,
        "gas": view.fees.map(|(gas, _)| gas),
        "max_fee_per_gas": view.fees.map(|(_, fees)| fees.max_fee_per_gas.to_string()),
        "simulation": view.simulation.map(|s| match s {
            SimulationOutcome::Success => json!({"success": true}),
            SimulationOutcome::Reverted(reason) => json!({"success": false, "revert_reason": reason}),
        }),
    }))
}

/// `POST /v1/wallets/{id}/sign-typed-data` with `{"typed_data": {…}}`.
pub(crate) async fn sign_typed_data(
    state: State<Arc<AppState>>,
    principal: Principal,
    id: Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    sign(state, principal, id, body, &["typed_data"]).await
}

/// `POST /v1/wallets/{id}/sign-message` with `{"message": "text"}` or `{"message_hex": "0x…"}`.
pub(crate) async fn sign_message(
    state: State<Arc<AppState>>,
    principal: Principal,
    id: Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    sign(state, principal, id, body, &["message", "message_hex"]).await
}

/// `POST /v1/wallets/{id}/sign-hash` with `{"hash": "0x…"}` (denied unless a `raw_hash` rule allows it).
pub(crate) async fn sign_hash(
    state: State<Arc<AppState>>,
    principal: Principal,
    id: Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    sign(state, principal, id, body, &["hash"]).await
}

/// Policy, audit, then a 2-of-3 signature over the digest the signers compute
/// themselves from the full payload.
async fn sign(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
    fields: &[&str],
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "sign")?;
    refuse_if_frozen(&state, &wallet.id)?;
    let body: Value = parse_json(&body_bytes(body)?)?;
    if let Some(key) = body.as_object().and_then(|map| map.keys().find(|k| !fields.contains(&k.as_str()))) {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            format!("unknown field {key:?}; this endpoint takes {fields:?}"),
        )
        .with_details(json!({"field": key})));
    }
    let request = SignRequest::from_value(&body)?;
    let SignPlan { action, payload } = sign_plan(request)?;
    if let Err(refusal) = refuse_owner_text(&action) {
        let store = state.store.clone();
        let entry = audit_entry(
            &principal.actor(),
            "signature.refused",
            Some(&wallet.id),
            json!({"code": refusal.code, "action": {"kind": action.kind()}}),
        );
        blocking(move || Ok(store.audit(entry, now())?)).await?;
        return Err(refusal);
    }
    let policy = policy_of(&state, &wallet.id)?;
    let mut decision = decide_signature(&state, &wallet, policy.as_deref(), &action, None).await?;
    if let Some(agent) = crate::agent_auth::agent_policy_of(&state, &principal.actor())? {
        let actor = principal.actor();
        let own = decide_signature(&state, &wallet, Some(&agent.policy), &action, Some(&actor)).await?;
        decision = crate::agent_auth::narrow(decision, &agent.agent_id, own);
    }
    let digest = payload.digest()?;
    let actor = principal.actor();
    let store = state.store.clone();
    let described = describe(policy.as_deref(), &action);
    let (audit_actor, wallet_id, recorded) = (actor.clone(), wallet.id.clone(), decision.clone());
    let details = json!({"action": described, "digest": format!("0x{}", hex::encode(digest))});
    // Fail closed: the decision is on the audit trail before anything is signed, and a
    // freeze that landed while the policy decided stops the signature here.
    blocking(move || {
        let mut entry = audit_entry(&audit_actor, "policy.decision", Some(&wallet_id), details);
        entry.policy_hash = Some(recorded.policy_hash.clone());
        entry.decision = Some(json!(recorded));
        match store.audit_unless_frozen(&wallet_id, entry, now())? {
            Ok(_) => Ok(()),
            Err(freeze) => Err(crate::context::frozen_error(&freeze)),
        }
    })
    .await?;
    if decision.verdict == Verdict::Deny {
        return Err(denial_error(&decision));
    }
    let key = crate::context::signing_key(&state, &wallet)?;
    let signer = state.signer.clone();
    // A signature reserves nothing, so there is nothing to commit at its point of no return.
    let sig = blocking(move || {
        signer.sign(&key, payload.encode(), digest, None, None, &mut || Ok(())).map_err(|failure| failure.error)
    })
    .await?;
    let mut signature = Vec::with_capacity(65);
    signature.extend_from_slice(&sig.r);
    signature.extend_from_slice(&sig.s);
    signature.push(27 + sig.recovery_id);
    let signature = format!("0x{}", hex::encode(signature));
    let store = state.store.clone();
    let (wallet_id, kind) = (wallet.id.clone(), action.kind());
    let recorded_digest = format!("0x{}", hex::encode(digest));
    blocking(move || {
        let entry = audit_entry(
            &actor,
            "signature.created",
            Some(&wallet_id),
            json!({"kind": kind, "digest": recorded_digest, "signers": ["service", "cosigner"]}),
        );
        Ok(store.audit(entry, now())?)
    })
    .await?;
    Ok(Json(json!({
        "signature": signature,
        "digest": format!("0x{}", hex::encode(digest)),
        "address": wallet.address,
        "action": describe(policy.as_deref(), &action),
        "decision": decision,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: &[u8]) -> Action {
        Action::PersonalMessage { message: bytes.to_vec() }
    }

    #[test]
    fn owner_decision_texts_are_refused_and_other_messages_are_not() {
        for reserved in [
            &b"Mandate owner decision v1\naction: approve"[..],
            b"Mandate owner decision",
            b" \n\tMANDATE OWNER DECISION v2",
            b"Mandate owner ceremony v1\nceremony: repair",
        ] {
            let error = refuse_owner_text(&message(reserved)).unwrap_err();
            assert_eq!(error.code, ErrorCode::ReservedMessage, "{reserved:?}");
        }
        for fine in [&b""[..], b"Mandate owner", b"hello", b"Sign in: Mandate owner decision v1", b"\xff\xfe"] {
            assert!(refuse_owner_text(&message(fine)).is_ok(), "{fine:?}");
        }
        assert!(refuse_owner_text(&Action::RawHash { hash: B256::ZERO }).is_ok());
    }

    fn decision(verdict: Verdict, denial: Option<DenialKind>, reason: &str) -> Decision {
        Decision {
            verdict,
            tier: Tier::Instant,
            delay_secs: None,
            code: denial.map(|_| ErrorCode::PolicyDenied),
            rule_id: "gas".into(),
            reason: reason.into(),
            observed: None,
            limit: None,
            usd_value: None,
            tier_rules: Vec::new(),
            budgets: Vec::new(),
            policy_hash: "h".into(),
            denial,
        }
    }

    #[test]
    fn a_failed_estimate_replaces_only_a_fees_unknown_denial_whatever_the_words() {
        let view = ChainView {
            chain_id: 31337,
            prices: BTreeMap::new(),
            simulation: None,
            fees: None,
            estimate_error: Some("insufficient funds".into()),
        };
        let estimate_failed = |d: &Decision| {
            d.verdict == Verdict::Deny
                && d.code == Some(ErrorCode::GasEstimationFailed)
                && d.reason == "gas estimation failed: insufficient funds"
        };
        // The engine's kind decides, not the reason's text.
        let unknown = require_fees(decision(Verdict::Deny, Some(DenialKind::FeesUnknown), "any words"), &view);
        assert!(estimate_failed(&unknown), "{unknown:?}");
        let worded = "the transaction's fees are unknown, so the gas cap cannot be checked";
        let by_rule = require_fees(decision(Verdict::Deny, Some(DenialKind::Rule), worded), &view);
        assert_eq!((by_rule.code, by_rule.reason.as_str()), (Some(ErrorCode::PolicyDenied), worded));
        let allowed = require_fees(decision(Verdict::Allow, None, "no rule was violated"), &view);
        assert!(estimate_failed(&allowed) && allowed.denial == Some(DenialKind::FeesUnknown), "{allowed:?}");
        // With a gas estimate nothing changes.
        let estimated = ChainView { estimate_error: None, ..view };
        let kept = require_fees(decision(Verdict::Deny, Some(DenialKind::FeesUnknown), "w"), &estimated);
        assert_eq!(kept.code, Some(ErrorCode::PolicyDenied));
    }
}
