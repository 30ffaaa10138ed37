"""Long-running operations as the unmodified Azure SDK for Python follows
them: a machine's deletion under the SDK's default api-version (where it is
long-running), and an extension's creation and deletion under an older one.
The extension's machine never connects, so its creation can only end by
tether-cloud's timeout: the test moves tether-cloud's clock past it.
Prints one JSON object of what it saw."""

import json
import os
import ssl
import threading
import urllib.request

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.hybridcompute import HybridComputeManagementClient
from azure.mgmt.hybridcompute.models import (
    Machine,
    MachineExtension,
    MachineExtensionProperties,
    MachineProperties,
)
from hybridcompute_auth import ClientSecret

URL = os.environ["TC_URL"]
CA = os.environ["TC_CA"]
SUB = os.environ["TC_SUBSCRIPTION"]
RG = "demo"


def client(**kwargs):
    return HybridComputeManagementClient(
        ClientSecret(), SUB, base_url=URL, credential_scopes=[f"{URL}/.default"],
        connection_verify=CA, **kwargs
    )


def advance_clock(seconds):
    request = urllib.request.Request(
        f"{URL}/admin/clock/advance",
        data=json.dumps({"seconds": seconds}).encode(),
        headers={"Authorization": "Bearer " + os.environ["TC_ADMIN_KEY"], "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, context=ssl.create_default_context(cafile=CA)).read()


seen = {}
newest = client()
seen["defaultApiVersion"] = newest._config.api_version
newest.machines.create_or_update(
    RG, "lro-1", Machine(location="local", properties=MachineProperties(vm_id="00000000-0000-4000-8000-0000000000a1"))
)
deletion = newest.machines.begin_delete(RG, "lro-1")
deletion.result()
seen["machineDeletion"] = deletion.status()
try:
    newest.machines.get(RG, "lro-1")
    seen["afterDeletion"] = "found"
except ResourceNotFoundError:
    seen["afterDeletion"] = "ResourceNotFoundError"

older = client(api_version=os.environ["TC_OLDER_API_VERSION"])
older.machines.create_or_update(
    RG, "lro-2", Machine(location="local", properties=MachineProperties(vm_id="00000000-0000-4000-8000-0000000000a2"))
)
creation = older.machine_extensions.begin_create_or_update(
    RG,
    "lro-2",
    "hello",
    MachineExtension(
        location="local",
        properties=MachineExtensionProperties(publisher="tether.samples", type="hello", type_handler_version="0.1.0"),
    ),
)
seen["creationWhileWaiting"] = creation.status()
# Nothing will ever answer for this machine; past the timeout it fails.
threading.Timer(2.0, advance_clock, args=[int(os.environ["TC_OPERATION_TIMEOUT"]) + 60]).start()
try:
    creation.result()
    seen["creation"] = "Succeeded"
except HttpResponseError as e:
    seen["creation"] = {"status": creation.status(), "code": e.error.code if e.error else str(e)}
removal = older.machine_extensions.begin_delete(RG, "lro-2", "hello")
removal.result()
seen["extensionDeletion"] = removal.status()
seen["extensionsLeft"] = [e.name for e in older.machine_extensions.list(RG, "lro-2")]
print(json.dumps(seen))
