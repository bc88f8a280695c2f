# Image of spillway-cp: built on debian:12 from this repository, run on debian:12-slim with
# only its runtime libraries. From the repository root:
#   docker build -f deploy/docker/spillway-cp.Dockerfile -t spillway-cp .

FROM debian:12 AS build
# The build packages of deploy/install-deps.sh (GoogleTest too: the top-level CMakeLists.txt
# configures the tests even when one binary is built).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libboost1.81-dev libboost-json1.81-dev libsqlite3-dev libpq-dev libspdlog-dev \
      libssl-dev libyaml-cpp-dev libgtest-dev libgmock-dev libgoogle-perftools-dev \
      libnghttp2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Two jobs by default: the reference machine has two cores (--build-arg JOBS=N for more).
ARG JOBS=2
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPILLWAY_WERROR=ON \
 && cmake --build /build -j"${JOBS}" --target spillway-cp \
 && strip --strip-debug -o /spillway-cp /build/controlplane/spillway-cp

FROM debian:12-slim
# The shared libraries spillway-cp links (tests/deploy/deploy_test.py checks the list
# against the built binary).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libabsl20220623 libgrpc++1.51 libgrpc29 libprotobuf32 libsqlite3-0 libpq5 \
      libspdlog1.10 libfmt9 libssl3 libboost-json1.81.0 libtcmalloc-minimal4 \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric id, so Kubernetes' runAsNonRoot can check it and volumes can be given to it.
RUN groupadd --system --gid 10001 spillway \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/spillway \
      --shell /usr/sbin/nologin spillway \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/spillway
COPY --from=build /spillway-cp /usr/local/bin/spillway-cp
USER 10001:10001
WORKDIR /var/lib/spillway
# 7070: gRPC for agents and spillwayctl (--listen); 9091: /metrics and /healthz
# (--metrics-listen). Binding them to 0.0.0.0 is up to the command line.
EXPOSE 7070 9091
ENTRYPOINT ["/usr/local/bin/spillway-cp"]
# The database lives on a volume at /var/lib/spillway; on any address but loopback
# spillway-cp also needs its token files and TLS (see deploy/k8s/controlplane.yaml).
CMD ["--listen=127.0.0.1:7070", "--db=/var/lib/spillway/topology.db"]
