# Multi-stage build. `docker build -t sponsorgate .` builds the runtime image
# (the last stage), which holds `sponsorgate` alone. The development
# simulator of GitHub has its own target, never part of that image:
# `docker build --target github-sim -t sponsorgate-github-sim .`
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p sponsorgate -p github-sim

FROM debian:bookworm-slim AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home sponsorgate

# Development only: the fake GitHub (it signs anyone in as a fixture sponsor).
FROM base AS github-sim
COPY --from=build /src/target/release/github-sim /usr/local/bin/github-sim
USER sponsorgate
ENTRYPOINT ["github-sim"]

FROM base AS runtime
COPY --from=build /src/target/release/sponsorgate /usr/local/bin/sponsorgate
USER sponsorgate
ENV BIND=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["sponsorgate"]
CMD ["serve"]
