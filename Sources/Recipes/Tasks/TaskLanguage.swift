/// A task whose prompts come in more than one language, and which knows each prompt's language: the
/// language its reasoning should be written in, which the `language` reward and the mixed-language
/// measure (`ResponseMeasures`) check.
protocol BilingualTask: TaskGenerator {
  /// The language `example`'s prompt is written in (an example this task drew).
  func language(of example: TaskExample) -> PromptLanguage
}

extension TaskGenerator {
  /// The language of `example`'s prompt: the task's say for a `BilingualTask`, English for every
  /// other task. Not guessed from the words: a translation prompt holds Spanish text but asks, in
  /// English, for work whose reasoning the reward reads as English, as it always has.
  func promptLanguage(of example: TaskExample) -> PromptLanguage {
    (self as? any BilingualTask)?.language(of: example) ?? .english
  }
}
