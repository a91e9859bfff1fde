# CoreDNS (tests/cluster/coredns), static; it binds port 53, so it runs as root in its pod.
FROM scratch
COPY coredns /coredns
EXPOSE 53 53/udp
ENTRYPOINT ["/coredns"]
