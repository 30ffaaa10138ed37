"""hello, in Python: logs every lifecycle call and answers
`invoke greet NAME…` with a greeting. The same commands as the Rust
hello (plugins/hello), so the two can be measured side by side.
"""

import tether_sdk as tether


class Lifecycle(tether.Extension):
    def on_install(self):
        tether.log.info("hello: install")

    def on_enable(self):
        tether.log.info("hello: enable")

    def on_disable(self):
        tether.log.info("hello: disable")

    def on_update(self, from_version):
        tether.log.info(f"hello: update from {from_version}")

    def on_uninstall(self):
        tether.log.info("hello: uninstall")

    @tether.command("greet")
    def greet(self, args):
        if not args:
            raise tether.Error("invalid-argument", "usage: greet NAME")
        name = " ".join(args)
        tether.log.info(f"hello: greeting {name}")
        return f"Hello, {name}!"

    # One host call and nothing else: what the benchmarks measure.
    @tether.command("ping")
    def ping(self, args):
        tether.log.trace("ping")
        return ""
