# Tether's %preun ($1: 0 erase, 1 upgrade): on erase, stops the service.
@LIB@
if [ "$1" -eq 0 ]; then
    stop_for_removal
fi
