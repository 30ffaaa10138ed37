"""Run commands as an operator's automation drives them with the unmodified
Azure SDK for Python (azure-mgmt-hybridcompute): each is created with
begin_create_or_update and followed to its end by the SDK's own poller,
while the machine's Tether service picks it up and runs an installed
extension's command. Prints one JSON object of what it saw.

TC_PHASE=main runs the full set; any other phase runs one command (the
machine's operator has turned run commands off, or blocked the extension)
and reports it under the phase's name."""

import json
import os
import time

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.hybridcompute import HybridComputeManagementClient
from azure.mgmt.hybridcompute.models import (
    MachineRunCommand,
    MachineRunCommandProperties,
    MachineRunCommandScriptSource,
    RunCommandInputParameter,
)

URL = os.environ["TC_URL"]
MACHINE = os.environ["TC_MACHINE"]
RG = "demo"


class StaticToken:
    def get_token(self, *scopes, **kwargs):
        return AccessToken(os.environ["TC_TOKEN"], int(time.time()) + 3000)


client = HybridComputeManagementClient(
    StaticToken(), os.environ["TC_SUBSCRIPTION"], base_url=URL,
    credential_scopes=[f"{URL}/.default"], connection_verify=os.environ["TC_CA"],
    polling_interval=1,
)


def command(command_id=None, script=None, parameters=(), protected=(), asynchronous=False):
    return MachineRunCommand(
        location="local",
        properties=MachineRunCommandProperties(
            source=MachineRunCommandScriptSource(command_id=command_id, script=script),
            parameters=[RunCommandInputParameter(name=n, value=v) for n, v in parameters],
            protected_parameters=[RunCommandInputParameter(name=n, value=v) for n, v in protected],
            async_execution=asynchronous,
            timeout_in_seconds=30,
        ),
    )


def view(resource):
    p = resource.properties
    iv = p.instance_view
    return {
        "name": resource.name,
        "type": resource.type,
        "provisioningState": p.provisioning_state,
        "commandId": p.source.command_id,
        "parameters": [{"name": x.name, "value": x.value} for x in (p.parameters or [])],
        "protectedParameters": p.protected_parameters,
        "executionState": iv.execution_state if iv else None,
        "exitCode": iv.exit_code if iv else None,
        "output": iv.output if iv else None,
        "error": iv.error if iv else None,
        "started": bool(iv and iv.start_time),
        "ended": bool(iv and iv.end_time),
    }


def run(name, body):
    """Creates it and follows it with the SDK's poller; the outcome and
    what GET shows afterwards."""
    started = time.monotonic()
    outcome = {}
    try:
        poller = client.machine_run_commands.begin_create_or_update(RG, MACHINE, name, body)
        outcome["result"] = view(poller.result())
        outcome["status"] = poller.status()
    except HttpResponseError as e:
        outcome["httpStatus"] = e.status_code
        outcome["code"] = e.error.code if e.error else None
        outcome["message"] = e.error.message if e.error else str(e)
    outcome["seconds"] = time.monotonic() - started
    try:
        outcome["get"] = view(client.machine_run_commands.get(RG, MACHINE, name))
    except ResourceNotFoundError:
        outcome["get"] = None
    return outcome


seen = {"defaultApiVersion": client._config.api_version}
if os.environ["TC_PHASE"] == "main":
    seen["greet"] = run(
        "greet-1",
        command("Contoso/Hello:greet", parameters=[("who", "World")],
                protected=[("token", os.environ["TC_SECRET"])]),
    )
    seen["fails"] = run("greet-2", command("Contoso/Hello:greet"))
    seen["missing"] = run("missing-1", command("Contoso/Missing:collect"))
    seen["script"] = run("script-1", command(script="rm -rf /"))
    seen["async"] = run("async-1", command("Contoso/Hello:ping", asynchronous=True))
    seen["listed"] = sorted(r.name for r in client.machine_run_commands.list(RG, MACHINE))
    client.machine_run_commands.begin_delete(RG, MACHINE, "greet-1").result()
    try:
        client.machine_run_commands.get(RG, MACHINE, "greet-1")
        seen["afterDelete"] = "found"
    except ResourceNotFoundError:
        seen["afterDelete"] = "ResourceNotFoundError"
else:
    phase = os.environ["TC_PHASE"]
    seen[phase] = run(f"{phase}-1", command("Contoso/Hello:greet", parameters=[("who", "X")]))
print(json.dumps(seen))
