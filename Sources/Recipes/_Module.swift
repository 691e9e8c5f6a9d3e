// Placeholder until the first real file of Recipes lands; removed by it.
