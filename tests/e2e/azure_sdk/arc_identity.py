"""A workload on a connected machine, as the Azure SDK for Python serves it:
azure-identity's ManagedIdentityCredential and MSAL's ManagedIdentityClient,
unmodified, find Azure Arc by IDENTITY_ENDPOINT and IMDS_ENDPOINT, answer
the endpoint's challenge from the key file and get the machine's token;
the token then reads the machine's own resource from ARM."""

import json
import os
import urllib.request

import msal
import requests
from azure.identity import ManagedIdentityCredential
from azure.mgmt.hybridcompute.models import Machine

resource = os.environ["TC_RESOURCE"]
credential = ManagedIdentityCredential()
first = credential.get_token(resource + "/.default")
again = credential.get_token(resource + "/.default")

client = msal.ManagedIdentityClient(
    msal.SystemAssignedManagedIdentity(), http_client=requests.Session()
)
direct = client.acquire_token_for_client(resource=resource)

request = urllib.request.Request(
    os.environ["TC_MACHINE_URL"], headers={"Authorization": "Bearer " + first.token}
)
with urllib.request.urlopen(request) as answer:
    machine = json.load(answer)
# What the agent reported, read through the SDK's own model.
model = Machine(machine)
statuses = model.properties.service_statuses
configuration = model.properties.agent_configuration

print(
    json.dumps(
        {
            "token": first.token,
            "expiresOn": first.expires_on,
            "cached": again.token == first.token,
            "msal": {
                "token": direct.get("access_token"),
                "type": direct.get("token_type"),
                "error": direct.get("error_description"),
            },
            "machine": {"id": machine["id"], "name": machine["name"]},
            "extensionService": statuses.extension_service.status,
            "guestConfigurationService": statuses.guest_configuration_service.status,
            "extensionsEnabled": configuration.extensions_enabled,
            "configMode": configuration.config_mode,
        }
    )
)
