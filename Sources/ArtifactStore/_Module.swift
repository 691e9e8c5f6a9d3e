// Placeholder until the first real file of ArtifactStore lands; removed by it.
