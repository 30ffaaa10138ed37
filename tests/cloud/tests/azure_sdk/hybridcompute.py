"""Drives tether-cloud's ARM with the unmodified Azure SDK for Python
(azure-mgmt-hybridcompute from PyPI), as an operator's automation would.
Prints one JSON object of what it saw; the Rust test asserts on it.

The token comes from tether-cloud's Entra-shaped token endpoint with the
client-credentials grant, posted by hybridcompute_auth (identity.py signs
in with azure-identity instead)."""

import json
import os

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.hybridcompute import HybridComputeManagementClient
from azure.mgmt.hybridcompute.models import Machine, MachineProperties, MachineUpdate
from hybridcompute_auth import ClientSecret

URL = os.environ["TC_URL"]
CA = os.environ["TC_CA"]
SUB = os.environ["TC_SUBSCRIPTION"]
API = os.environ["TC_API_VERSION"]
RG = "demo"


def client(api_version):
    return HybridComputeManagementClient(
        ClientSecret(),
        SUB,
        base_url=URL,
        credential_scopes=[f"{URL}/.default"],
        api_version=api_version,
        connection_verify=CA,
    )


seen = {}
arm = client(API)
for i, name in enumerate(["sdk-1", "sdk-2", "sdk-3"]):
    created = arm.machines.create_or_update(
        RG,
        name,
        Machine(location="local", properties=MachineProperties(vm_id=f"00000000-0000-4000-8000-00000000000{i}")),
    )
    seen.setdefault("created", []).append({"name": created.name, "type": created.type})
got = arm.machines.get(RG, "sdk-1")
seen["got"] = {
    "id": got.id,
    "location": got.location,
    "vmId": got.properties.vm_id,
    # The SDK parses these into datetimes; an empty or malformed one fails here.
    "createdAt": got.system_data.created_at.isoformat() if got.system_data else None,
    "lastStatusChange": got.properties.last_status_change.isoformat()
    if got.properties.last_status_change
    else None,
}
updated = arm.machines.update(RG, "sdk-1", MachineUpdate(tags={"env": "sdk"}))
seen["updatedTags"] = updated.tags
seen["listedInGroup"] = sorted(m.name for m in arm.machines.list_by_resource_group(RG))
seen["listedInSubscription"] = sorted(m.name for m in arm.machines.list_by_subscription())
try:
    arm.machines.get(RG, "absent")
    seen["missing"] = "found"
except ResourceNotFoundError as e:
    seen["missing"] = {"type": "ResourceNotFoundError", "code": e.error.code if e.error else None}
try:
    client("2019-03-18").machines.get(RG, "sdk-1")
    seen["unservedVersion"] = "answered"
except HttpResponseError as e:
    seen["unservedVersion"] = {"status": e.status_code, "code": e.error.code if e.error else None}
print(json.dumps(seen))
