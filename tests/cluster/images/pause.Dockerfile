# The pod sandbox's image (containerd's sandbox_image): cmd/pause, static.
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
