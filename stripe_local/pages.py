"""HTML for the hosted pages: Checkout, the hosted invoice page, Connect onboarding.

Deliberately plain (no JavaScript, one form each) so a browser test can drive them with
stable selectors: ``input[name=card]``, ``button[name=action][value=pay]``,
``button[name=action][value=cancel]``, ``button[type=submit]``. Every value is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from stripe_local.money import format_amount

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f6f9fc;color:#1a1f36;margin:0}
main{max-width:28rem;margin:3rem auto;background:#fff;border-radius:8px;padding:2rem;
box-shadow:0 2px 8px rgba(0,0,0,.08)}
h1{font-size:1.25rem;margin-top:0}.amount{font-size:2rem;font-weight:600;margin:.5rem 0 1.5rem}
label{display:block;font-size:.85rem;margin:.75rem 0 .25rem}
input{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #ccd;border-radius:4px}
button{margin-top:1.25rem;padding:.6rem 1.2rem;border:0;border-radius:4px;font-size:1rem}
.pay{background:#635bff;color:#fff}.cancel{background:#e3e8ee;color:#1a1f36}
.error{background:#fde8e8;color:#9b1c1c;padding:.75rem;border-radius:4px}
.ok{background:#e6f6ec;color:#1e6b3a;padding:.75rem;border-radius:4px}
table{width:100%;border-collapse:collapse}td{padding:.25rem 0}td.num{text-align:right}
small{color:#697386}
"""


def layout(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}<p><small>Local Stripe (test mode) - no real money moves."
        "</small></p></main></body></html>"
    )


def message_page(title: str, text: str, *, ok: bool = False) -> str:
    cls = "ok" if ok else "error"
    return layout(title, f"<h1>{escape(title)}</h1><p class={cls}>{escape(text)}</p>")


def checkout_page(session: dict[str, Any], items: list[dict[str, Any]], *,
                  error: str | None = None, card: str = "4242 4242 4242 4242") -> str:
    rows = "".join(
        f"<tr><td>{escape(str(i['description']))} &times; {i['quantity']}</td>"
        f"<td class=num>{escape(format_amount(i['amount_total'], i['currency']))}</td></tr>"
        for i in items
    )
    email = session.get("customer_email") or (session.get("customer_details") or {}).get(
        "email") or ""
    alert = f"<p class=error role=alert>{escape(error)}</p>" if error else ""
    total = format_amount(session["amount_total"], session["currency"])
    body = f"""
<h1>Pay Blanket</h1>
<div class=amount data-amount="{session['amount_total']}">{escape(total)}</div>
<table>{rows}</table>
{alert}
<form method=post>
  <label for=email>Email</label>
  <input id=email name=email type=email value="{escape(email)}">
  <label for=card>Card number</label>
  <input id=card name=card inputmode=numeric autocomplete=cc-number value="{escape(card)}">
  <label for=exp>Expiry</label><input id=exp name=exp value="12 / 34">
  <label for=cvc>CVC</label><input id=cvc name=cvc value="123">
  <button class=pay type=submit name=action value=pay>Pay {escape(total)}</button>
  <button class=cancel type=submit name=action value=cancel>Cancel</button>
</form>"""
    return layout("Checkout", body)


def invoice_page(invoice: dict[str, Any], *, error: str | None = None,
                 card: str = "4242 4242 4242 4242") -> str:
    amount = format_amount(invoice["amount_remaining"], invoice["currency"])
    lines = "".join(
        f"<tr><td>{escape(str(line['description'] or ''))}</td>"
        f"<td class=num>{escape(format_amount(line['amount'], line['currency']))}</td></tr>"
        for line in invoice["lines"]["data"]
    )
    due = invoice.get("due_date")
    alert = f"<p class=error role=alert>{escape(error)}</p>" if error else ""
    if invoice["status"] == "paid":
        action = "<p class=ok>This invoice has been paid.</p>"
    elif invoice["status"] == "open":
        action = f"""{alert}
<form method=post>
  <label for=card>Card number</label>
  <input id=card name=card inputmode=numeric value="{escape(card)}">
  <button class=pay type=submit name=action value=pay>Pay {escape(amount)}</button>
</form>"""
    else:
        action = f"<p class=error>This invoice is {escape(invoice['status'])}.</p>"
    body = f"""
<h1>Invoice {escape(invoice['number'] or invoice['id'])}</h1>
<div class=amount data-amount="{invoice['amount_remaining']}">{escape(amount)}</div>
<p><small>Due date (unix time): <span id=due>{due if due else '-'}</span>;
status: <span id=status>{escape(invoice['status'])}</span></small></p>
<table>{lines}</table>
{action}"""
    return layout("Invoice", body)


def onboarding_page(account: dict[str, Any], token: str) -> str:
    body = f"""
<h1>Set up payouts</h1>
<p>Account <code>{escape(account['id'])}</code> ({escape(account.get('email') or '')})</p>
<form method=post>
  <input type=hidden name=link value="{escape(token)}">
  <label for=business_name>Legal name</label>
  <input id=business_name name=business_name value="Test Rights Holder">
  <label for=iban>Bank account (test IBAN)</label>
  <input id=iban name=iban value="DE89370400440532013000">
  <button class=pay type=submit name=action value=submit>Agree and submit</button>
  <button class=cancel type=submit name=action value=leave>Return without finishing</button>
</form>"""
    return layout("Connect onboarding", body)


def express_dashboard_page(account: dict[str, Any], balance: dict[str, Any],
                           payouts: list[dict[str, Any]]) -> str:
    available = "".join(
        f"<li>{escape(format_amount(b['amount'], b['currency']))}</li>"
        for b in balance["available"]
    )
    rows = "".join(
        f"<tr><td>{escape(p['id'])}</td><td>{escape(p['status'])}</td>"
        f"<td class=num>{escape(format_amount(p['amount'], p['currency']))}</td></tr>"
        for p in payouts
    )
    body = f"""
<h1>Express dashboard</h1><p><code>{escape(account['id'])}</code></p>
<h2>Available</h2><ul>{available}</ul>
<h2>Payouts</h2><table>{rows}</table>"""
    return layout("Express dashboard", body)
