"""An agent loop with the LangChain tools of mandate_sdk, driven by a scripted model: the
"model" is a fixed list of tool calls (each may read the previous result), so the loop
runs without any model service. Everything goes to the daemon on 127.0.0.1.

    PYTHONPATH=sdks/python/src MANDATE_URL=http://127.0.0.1:3100 \\
    MANDATE_SESSION_TOKEN=mnd_sess_… MANDATE_WALLET=wal_… \\
      python examples/python/agent_loop.py 0x70997970C51812dc3A010C7d01b50e0d17dc79C8

The session needs the ``broadcast`` scope (mandate session create --scope broadcast);
install the SDK with its LangChain extra (pip install "sdks/python[langchain]").
"""

import json
import os
import sys
import time

from mandate_sdk import Client
from mandate_sdk.langchain import langchain_tools


def main() -> int:
    token, wallet = os.environ.get("MANDATE_SESSION_TOKEN"), os.environ.get("MANDATE_WALLET")
    if not token or not wallet or len(sys.argv) != 2:
        print("usage: MANDATE_SESSION_TOKEN=… MANDATE_WALLET=wal_… agent_loop.py RECIPIENT", file=sys.stderr)
        return 2
    to = sys.argv[1]
    with Client(os.environ.get("MANDATE_URL", "http://127.0.0.1:3100"), token=token) as client:
        tools = {tool.name: tool for tool in langchain_tools(client, wallet=wallet, band="broadcast")}

        # The scripted model: each turn sees the last tool result and names the next call.
        script = [
            lambda last: ("get_balance", {}),
            lambda last: ("get_policy_summary", {}),
            lambda last: ("prepare_transfer", {"to": to, "amount": "0.1"}),
            lambda last: ("send_transfer", {"to": to, "amount": "0.1", "confirm": True}) if last["decision"]["verdict"] == "allow" else None,
            lambda last: ("get_transaction", {"id": last["id"]}),
            lambda last: ("send_transfer", {"to": to, "amount": "50", "confirm": True}),
        ]
        last = None
        for turn, model in enumerate(script):
            call = model(last)
            if call is None:
                break
            name, args = call
            if name not in tools:
                raise SystemExit(f"the model asked for {name}, which this band does not offer")
            for _ in range(100):
                last = tools[name].invoke(args)
                # A transaction is polled until it is final, as a model would be told to.
                if name != "get_transaction" or last.get("status") in ("confirmed", "failed"):
                    break
                time.sleep(0.2)
            summary = f"error {last['error']['code']}: {last['error']['message']}" if last.get("error") and "code" in last["error"] else json.dumps(last)
            print(f"[{turn}] {name}({json.dumps(args)}) -> {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
