# Tether's %pre ($1: 1 install, 2 upgrade): refuses state this version
# cannot read. rpm itself refuses a downgrade without --oldpackage.
@LIB@
refuse_newer_state
