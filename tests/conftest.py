"""Shared by every test module."""

import signal

# A script that starts a job in the background (`cmd &` without job control, as CI runners may) makes
# it ignore SIGINT, and Python then never raises KeyboardInterrupt. The Ctrl-C tests need it, in this
# process and in the fvc processes it starts: a handled signal is reset to the default across exec,
# an ignored one is not.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
