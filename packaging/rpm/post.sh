# Tether's %post ($1: 1 install, 2 upgrade).
@LIB@
prepare_host
if [ "$1" -eq 1 ]; then
    start_or_restart install
else
    start_or_restart upgrade "an earlier version"
fi
