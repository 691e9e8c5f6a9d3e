extension Variable {
  /// Knowledge distillation's soft-target loss of these student logits `[rows, vocab]` against the
  /// teacher's (a constant: no gradient reaches the teacher): T² · mean over rows of
  /// KL(softmax(teacher/T) ‖ softmax(student/T)), each row weighted by `weights` (0 masks a prompt or
  /// padding row out).
  ///
  /// - Parameters:
  ///   - teacher: `[rows, vocab]`, the same shape as these logits.
  ///   - temperature: > 0; above 1 softens both distributions, so the student also learns how the
  ///     teacher ranks the wrong tokens ("dark knowledge").
  public func distillationLoss(teacher: Tensor, temperature: Float, weights: [Float]? = nil) -> Variable {
    let student = self
    precondition(teacher.shape == student.value.shape && student.value.shape.count == 2, "teacher and student logits differ in shape")
    precondition(temperature > 0, "the temperature must be positive")
    let rows = student.value.shape[0], vocab = student.value.shape[1]
    let w = weights ?? [Float](repeating: 1, count: rows)
    precondition(w.count == rows)
    var q = [Float](repeating: 0, count: rows * vocab), p = q
    let loss = student.value.withUnsafeBufferPointer { ps in
      teacher.withUnsafeBufferPointer { pt in
        w.withUnsafeBufferPointer { pw in
          q.withUnsafeMutableBufferPointer { pq in
            p.withUnsafeMutableBufferPointer { pp in
              distillationForward(student: ps.baseAddress!, teacher: pt.baseAddress!, weights: pw.baseAddress!,
                                  temperature: temperature, studentProbs: pq.baseAddress!, teacherProbs: pp.baseAddress!,
                                  rows: rows, vocab: vocab)
            }
          }
        }
      }
    }
    return Variable(Tensor(loss), op: "distillation", parents: [student]) { out in
      let g = out.grad!.scalars[0]
      q.withUnsafeBufferPointer { pq in
        p.withUnsafeBufferPointer { pp in
          w.withUnsafeBufferPointer { pw in
            student.withGrad { d in
              distillationBackward(dLoss: g, studentProbs: pq.baseAddress!, teacherProbs: pp.baseAddress!,
                                   weights: pw.baseAddress!, temperature: temperature, dStudent: d, rows: rows, vocab: vocab)
            }
          }
        }
      }
    }
  }
}
