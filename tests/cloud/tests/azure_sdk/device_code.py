"""A user's sign-in as the Azure SDK for Python does it, unmodified:
azure-identity's DeviceCodeCredential against tether-cloud as an
authority (the prompt callback has tether-cloud's admin API approve the
code, as the user would on another device), then MSAL's
PublicClientApplication directly: its account cache is filled from the id
token and client_info, and a forced silent acquisition redeems the refresh
token, which rotates. Prints one JSON object of what it saw."""

import json
import os
import ssl
import urllib.parse
import urllib.request

import msal
from azure.identity import DeviceCodeCredential

URL = os.environ["TC_URL"]
CA = os.environ["TC_CA"]
TENANT = os.environ["TC_TENANT"]
USER = os.environ["TC_USER"]
SCOPE = f"{URL}/.default"
CONTEXT = ssl.create_default_context(cafile=CA)


def approve(user_code):
    request = urllib.request.Request(
        f"{URL}/admin/deviceCodes/{user_code}/approve",
        data=json.dumps({"username": USER}).encode(),
        headers={"Authorization": "Bearer " + os.environ["TC_ADMIN_KEY"], "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, context=CONTEXT).read()


seen = {}
credential = DeviceCodeCredential(
    client_id=os.environ["TC_PUBLIC_CLIENT"],
    tenant_id=TENANT,
    authority=URL,
    disable_instance_discovery=True,
    prompt_callback=lambda uri, code, expires: approve(code),
)
record = credential.authenticate(scopes=[SCOPE])
seen["record"] = {"username": record.username, "tenantId": record.tenant_id, "homeAccountId": record.home_account_id}
first = credential.get_token(SCOPE)
seen["silentFromCache"] = credential.get_token(SCOPE).token == first.token

# Instance discovery asked of tether-cloud, not of Microsoft's cloud.
app = msal.PublicClientApplication(
    os.environ["TC_PUBLIC_CLIENT"],
    authority=f"{URL}/{TENANT}",
    instance_discovery=f"{URL}/common/discovery/instance",
)
flow = app.initiate_device_flow(scopes=[SCOPE])
approve(flow["user_code"])
result = app.acquire_token_by_device_flow(flow)
old_refresh = result.get("refresh_token")
seen["idTokenClaims"] = result.get("id_token_claims")
accounts = app.get_accounts()
seen["accounts"] = [a.get("username") for a in accounts]
renewed = app.acquire_token_silent([SCOPE], account=accounts[0], force_refresh=True) if accounts else None
seen["renewed"] = bool(renewed and "access_token" in renewed)
seen["rotated"] = bool(renewed and renewed.get("refresh_token") and renewed["refresh_token"] != old_refresh)
try:
    msal.PublicClientApplication(
        os.environ["TC_PUBLIC_CLIENT"],
        authority=f"{URL}/00000000-0000-0000-0000-000000000000",
        instance_discovery=f"{URL}/common/discovery/instance",
    ).initiate_device_flow(scopes=[SCOPE])
    seen["unknownInstance"] = "accepted"
except ValueError as e:
    seen["unknownInstance"] = str(e).split(":")[0]
# The refresh token that was redeemed is spent.
form = urllib.parse.urlencode(
    {"grant_type": "refresh_token", "client_id": os.environ["TC_PUBLIC_CLIENT"], "refresh_token": old_refresh or "", "scope": SCOPE}
).encode()
try:
    urllib.request.urlopen(urllib.request.Request(f"{URL}/{TENANT}/oauth2/v2.0/token", data=form), context=CONTEXT)
    seen["oldRefresh"] = "accepted"
except urllib.error.HTTPError as e:
    seen["oldRefresh"] = json.load(e).get("error")
print(json.dumps(seen))
