# config.mk: what varies from machine to machine. Override on the command
# line (make CC=clang) or in config.local.mk, which is not tracked.

VERSION = 0.1.0
PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man

CC ?= cc
FUZZCC = clang
PKG_CONFIG ?= pkg-config
PROTOC_C = protoc-c
PROTOC = protoc
PYTHON = /usr/bin/python3
GRPC_PROTO_DIR = /usr/share/grpc-proto

# pkg-config names of the libraries we link.
PKGS = libnghttp2 libevent libevent_openssl libprotobuf-c openssl zlib sqlite3
TEST_PKGS = check
# The grpc++ peers of `make bench` (bench/grpcpp/, C++ only there).
CXX ?= g++
CXXSTD = -std=c++17
BENCH_CXX_PKGS = grpc++ protobuf
GRPC_CPP_PLUGIN = /usr/bin/grpc_cpp_plugin

CSTD = -std=c11 -D_GNU_SOURCE
WARN = -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes
OPT = -O2 -g
ifdef DEBUG
OPT = -O0 -g3 -DORCHD_DEBUG
endif
ifdef SAN
OPT += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
SANLDFLAGS = -fsanitize=$(SAN)
endif

-include config.local.mk
