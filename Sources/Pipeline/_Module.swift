// Placeholder until the first real file of Pipeline lands; removed by it.
