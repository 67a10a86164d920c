"""The FGD (ATC'23) benchmark on Alibaba's openb GPU trace, replayed through corral's scheduler.

See README.md beside this file for the flow and the traces' PROTOCOL.md (../shared/traces beside the checkout) for the spec.
"""
