// swift-tools-version: 6.0
// Lineage: define, run and share model-training lineages. One target per layer; imports point down.
import PackageDescription

/// Numeric code is compiled with libm's errno semantics off, so `squareRoot` and `exp` vectorise
/// (see ../shared/TOOLCHAIN.md, "Making loops fast").
let numericSettings: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-fno-math-errno"])]

let package = Package(
  name: "Lineage",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "lineage", targets: ["lineage"]),
    .library(name: "Recipes", targets: ["Recipes"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
  ],
  targets: [
    // Each target lists exactly the modules its sources import (`grep -rh '^import' Sources/X`).
    // System libraries: a module map and a shim header each, nothing else.
    .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                   providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(name: "CLMDB", path: "Sources/CLMDB", pkgConfig: "lmdb",
                   providers: [.apt(["liblmdb-dev"])]),
    .systemLibrary(name: "CYAML", path: "Sources/CYAML", pkgConfig: "yaml-0.1",
                   providers: [.apt(["libyaml-dev"])]),
    // Open MPI, for stages on several ranks (`lineage worker`): static inline wrappers over its
    // handle macros, which Swift cannot import; linked by the `lineage` executable only.
    .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                   providers: [.apt(["libopenmpi-dev"])]),

    // The engine. CKernels: int8 products in C, for AVX2 / AVX-512 chosen at run time (Swift compiles
    // for baseline x86-64 here); imported by Tensors/Kernels/Int8Matmul.swift only.
    .target(name: "CKernels", path: "Sources/CKernels"),
    .target(name: "Tensors", dependencies: ["CBLAS", "CKernels"], exclude: ["README.md"], swiftSettings: numericSettings,
            linkerSettings: [.linkedLibrary("m")]),
    .target(name: "Models", dependencies: ["Tensors"], exclude: ["README.md"], swiftSettings: numericSettings),

    // The pipeline. CCurl: HTTP for the remote cache through libcurl, loaded only when a request is made
    // (its header comes from libcurl4-openssl-dev; nothing of libcurl is linked).
    .target(name: "CCurl", path: "Sources/CCurl"),
    .target(name: "ArtifactStore", dependencies: [
      "CLMDB", "CCurl", .product(name: "Crypto", package: "swift-crypto"),
    ], exclude: ["README.md"]),
    .target(name: "Pipeline", dependencies: ["CYAML", "ArtifactStore"], exclude: ["README.md"]),
    .target(name: "Recipes", dependencies: ["Pipeline", "Models", "Tensors"], exclude: ["README.md"],
            swiftSettings: numericSettings),
    // The readers (stage files, bundles, lockfiles) under libFuzzer (Scripts/fuzz), or a replay of saved inputs.
    .executableTarget(name: "lineage-fuzz", dependencies: ["Recipes", "Pipeline", "ArtifactStore"],
                      swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    .executableTarget(name: "lineage", dependencies: [
      "CMPI", "Recipes", "Pipeline", "ArtifactStore", "Models", "Tensors",
      .product(name: "ArgumentParser", package: "swift-argument-parser"),
    ]),

    .testTarget(name: "TensorsTests", dependencies: ["Tensors"], swiftSettings: numericSettings),
    .testTarget(name: "ModelsTests", dependencies: ["Models", "Tensors"], swiftSettings: numericSettings),
    .testTarget(name: "ArtifactStoreTests", dependencies: ["ArtifactStore"]),
    .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "ArtifactStore"]),
    .testTarget(name: "RecipesTests", dependencies: ["Recipes", "Pipeline", "ArtifactStore"]),
    .testTarget(name: "LineageTests", dependencies: ["lineage"]),
  ]
)
