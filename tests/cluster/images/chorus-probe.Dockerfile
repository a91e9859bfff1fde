# The go/no-go probe (cmd/chorus-probe), static: it needs no file of its own, only what
# the kubelet mounts (resolv.conf, the ServiceAccount token and CA).
FROM scratch
COPY chorus-probe /chorus-probe
USER 65534:65534
ENTRYPOINT ["/chorus-probe"]
