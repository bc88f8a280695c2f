# Image of spillway-agent: built on debian:12 from this repository, run on debian:12-slim
# with only its runtime libraries. From the repository root:
#   docker build -f deploy/docker/spillway-agent.Dockerfile -t spillway-agent .

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
 && cmake --build /build -j"${JOBS}" --target spillway-agent \
 && strip --strip-debug -o /spillway-agent /build/dataplane/spillway-agent

FROM debian:12-slim
# The shared libraries spillway-agent links (tests/deploy/deploy_test.py checks the list
# against the built binary) and the CA store it verifies Azure endpoints with.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libabsl20220623 libgrpc++1.51 libgrpc29 libprotobuf32 libyaml-cpp0.7 \
      libboost-json1.81.0 libspdlog1.10 libfmt9 libssl3 libnghttp2-14 libtcmalloc-minimal4 \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric id, so Kubernetes' runAsNonRoot can check it and volumes can be given to it.
RUN groupadd --system --gid 10001 spillway \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/spillway \
      --shell /usr/sbin/nologin spillway \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/spillway
COPY --from=build /spillway-agent /usr/local/bin/spillway-agent
USER 10001:10001
WORKDIR /var/lib/spillway
# 8080: the Azure OpenAI API (--listen); 9090: /healthz, /readyz, /status, /metrics
# (--admin-listen). Binding them to 0.0.0.0 is up to the command line.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/spillway-agent"]
# The agent needs at least --region and a topology or control plane: no default runs it.
CMD ["--help"]
