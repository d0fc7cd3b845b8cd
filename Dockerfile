# Multi-stage build: a release build, then a small runtime image with a
# non-root user. Build: docker build -t sponsorgate .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p sponsorgate -p github-sim

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home sponsorgate
COPY --from=build /src/target/release/sponsorgate /usr/local/bin/sponsorgate
COPY --from=build /src/target/release/github-sim /usr/local/bin/github-sim
USER sponsorgate
ENV BIND=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["sponsorgate"]
CMD ["serve"]
