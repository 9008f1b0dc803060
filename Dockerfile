# rwproxy container image: build with the Rust toolchain, run on a slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p rwproxy

FROM debian:bookworm-slim
RUN useradd --system --no-create-home rwproxy
COPY --from=build /src/target/release/rwproxy /usr/local/bin/rwproxy
USER rwproxy
EXPOSE 6033 9033
ENTRYPOINT ["/usr/local/bin/rwproxy"]
CMD ["--config", "/etc/rwproxy/rwproxy.yaml"]
