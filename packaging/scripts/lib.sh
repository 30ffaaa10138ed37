# What Tether's maintainer scripts share, .deb and .rpm alike (tether-dist
# puts it at the top of each, with this build's version and state schema).
ROOT=/var/opt/tether
TOKENS=/var/opt/azcmagent/tokens
VERSION='@VERSION@'
SCHEMA='@STATE_SCHEMA@'
KEEP="$ROOT/.uninstall/tether"

systemd_runs() {
    [ -d /run/systemd/system ]
}

# Refuses to go on over state a newer Tether wrote in a schema this one
# cannot read (the binary refuses it too, with exit code 6).
refuse_newer_state() {
    marker="$ROOT/state-version.json"
    [ -f "$marker" ] || return 0
    found=$(sed -n 's/.*"schema"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$marker" | head -n 1)
    by=$(sed -n 's/.*"writtenBy"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$marker" | head -n 1)
    if [ -n "$found" ] && [ "$found" -gt "$SCHEMA" ]; then
        echo "tether: refusing to install Tether $VERSION: the state under $ROOT is in schema $found, written by Tether ${by:-(unknown)}; Tether $VERSION reads schema $SCHEMA and older. Install that version or a newer one, or remove the state to start over." >&2
        exit 1
    fi
}

# The group that may read the service's status, the state root, and the
# directory the identity endpoint writes key files to (the one the Azure
# SDKs read; ProtectSystem=strict keeps the service from making it); then
# an older state tree is migrated now rather than at the service's start.
prepare_host() {
    getent group tether >/dev/null || groupadd --system tether
    install -d -m 0755 -o root -g root "$ROOT"
    rm -rf "$ROOT/.uninstall"
    install -d -m 0755 "$TOKENS"
    TETHER_HOME="$ROOT" /usr/bin/tether config list >/dev/null
}

# $1: install or upgrade; $2: what was there before, for the message.
start_or_restart() {
    if ! systemd_runs; then
        echo "tether: systemd is not running here: the unit is installed but not started; run 'tether service run' under this machine's supervisor"
        return 0
    fi
    systemctl daemon-reload || true
    if [ "$1" = install ]; then
        systemctl enable --now tether.service
        echo "tether: installed $VERSION; the service is enabled and started. Connect with: tether connect ..."
    else
        systemctl try-restart tether.service
        echo "tether: upgraded from $2 to $VERSION; the service was restarted if it ran; the registration and the extensions are kept"
    fi
}

# Stops the service and keeps a copy of the binary in the state root, for
# retiring the machine after the package's files are gone.
stop_for_removal() {
    if systemd_runs; then
        systemctl disable --now tether.service >/dev/null 2>&1 || true
    fi
    if [ -d "$ROOT" ] && [ -x /usr/bin/tether ]; then
        install -d -m 0700 "$ROOT/.uninstall"
        cp /usr/bin/tether "$KEEP"
    fi
}

resource() {
    sed -n 's/.*"resourceId"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$ROOT/registration.json" | head -n 1
}

# Says what removal kept.
removed() {
    if systemd_runs; then systemctl daemon-reload || true; fi
    if [ -f "$ROOT/registration.json" ]; then
        echo "tether: removed; this machine stays registered as $(resource) with its state in $ROOT: reinstalling resumes it; $1"
    fi
}

# Never leaves extensions without an agent, nor the cloud resource orphaned
# silently: a connected machine is disconnected (its extensions removed and
# its resource deleted, with the session of `tether login`), or, without a
# sign-in, disconnected locally and the operator told which resource is
# left. Then the state, the key-file directory and the group go.
retire() {
    if [ -f "$ROOT/registration.json" ]; then
        id=$(resource)
        if [ -x "$KEEP" ] && TETHER_HOME="$ROOT" "$KEEP" disconnect --no-prompt </dev/null >/dev/null 2>&1; then
            echo "tether: disconnected $id: its extensions were removed and its resource deleted"
        else
            if [ -x "$KEEP" ]; then
                TETHER_HOME="$ROOT" "$KEEP" disconnect --force-local-only >/dev/null 2>&1 || true
            fi
            echo "tether: the extensions were removed from this machine, but its resource $id could not be deleted (no valid sign-in: run 'tether login' before removing). Delete it yourself, for example: az connectedmachine delete --ids $id" >&2
        fi
    fi
    rm -rf "$ROOT" "$TOKENS"
    # What `tether service proxy-env set` and `tether service install` wrote.
    rm -f /etc/systemd/system.conf.d/tether-proxy.conf \
        /etc/systemd/system.conf.d/tether-identity.conf /etc/systemd/system/tether.service
    rmdir /var/opt/azcmagent 2>/dev/null || true
    if getent group tether >/dev/null; then
        groupdel tether || true
    fi
    if systemd_runs; then systemctl daemon-reload || true; fi
}
