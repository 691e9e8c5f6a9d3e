// Placeholder until the first real file of Models lands; removed by it.
