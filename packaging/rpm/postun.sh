# Tether's %postun ($1: 0 erase, 1 upgrade). rpm has no purge: an erase
# keeps the state, as `apt-get remove` does; TETHER_PURGE=1 retires the
# machine as `apt-get purge` does.
@LIB@
if [ "$1" -eq 0 ]; then
    if [ "${TETHER_PURGE:-}" = 1 ]; then
        retire
    else
        removed "'TETHER_PURGE=1 dnf remove tether' (or 'tether disconnect' first) retires it"
    fi
fi
