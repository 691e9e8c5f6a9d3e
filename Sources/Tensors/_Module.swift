// Placeholder until the first real file of Tensors lands; removed by it.
