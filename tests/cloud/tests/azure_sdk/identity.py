"""azure-identity's ClientSecretCredential (MSAL underneath), unmodified,
signs in to tether-cloud as an authority: OIDC discovery, then the
client-credentials grant; the token drives azure-mgmt-hybridcompute.
Prints one JSON object of what it saw."""

import json
import os

from azure.identity import ClientSecretCredential
from azure.mgmt.hybridcompute import HybridComputeManagementClient

URL = os.environ["TC_URL"]
credential = ClientSecretCredential(
    os.environ["TC_TENANT"],
    os.environ["TC_CLIENT_ID"],
    os.environ["TC_CLIENT_SECRET"],
    authority=URL,
    # tether-cloud is not one of Microsoft's clouds: no instance discovery.
    disable_instance_discovery=True,
)
token = credential.get_token(f"{URL}/.default")
arm = HybridComputeManagementClient(
    credential,
    os.environ["TC_SUBSCRIPTION"],
    base_url=URL,
    credential_scopes=[f"{URL}/.default"],
    api_version=os.environ["TC_API_VERSION"],
)
print(json.dumps({
    "tokenLength": len(token.token),
    "expiresOn": token.expires_on,
    "machines": sorted(m.name for m in arm.machines.list_by_subscription()),
}))
